//! The serialized types of Stampede: what goes to disk or on the wire, and nothing else.
//!
//! Every document carries a `schema` string with a version (`stampede.summary/v1`), so
//! readers can tell which shape they hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod job;
pub mod robustness;
pub mod scale;
pub mod server;
pub mod testrun;

/// The schema name and version of [`Summary`] and [`RunSummary`] documents.
pub const SUMMARY_SCHEMA: &str = "stampede.summary/v1";

/// Whether a run passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every threshold held.
    Passed,
    /// A threshold was crossed (or the run was aborted by one).
    Failed,
}

/// The summary of one load step (or of `stampede quick`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`SUMMARY_SCHEMA`].
    pub schema: String,
    /// Passed or failed.
    pub status: Status,
    /// How long calls were being scheduled, in seconds (the denominator of rates).
    pub duration_s: f64,
    /// Call counts.
    pub requests: Requests,
    /// Asked-for and achieved rates.
    pub rate: Rate,
    /// The three latency views.
    pub latency_ms: Latencies,
    /// Every threshold and its result.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Failed calls by kind: `connect`, `timeout`, `reset`, `status 503`, `check`, `other`.
    pub failures: BTreeMap<String, u64>,
    /// Dropped calls by reason: `no_slot` (every slot was taken), `late` (the generator
    /// woke up too late).
    pub dropped: BTreeMap<String, u64>,
    /// Why the run stopped early, if it did: a threshold abort or an interruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// Why it failed, in words (a crossed threshold, failed requests, an abort); empty
    /// when it passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Call counts. `total = ok + failed`; dropped calls were never sent; interrupted calls
/// were sent but cut off by the hard stop and have no latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// Calls that finished.
    pub total: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Scheduled calls that were not sent.
    pub dropped: u64,
    /// Calls cut off by the hard stop.
    pub interrupted: u64,
}

/// Rates in calls per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// The asked-for rate (the mean over a ramp); `null` in the closed model.
    pub target: Option<f64>,
    /// Finished calls per second of `duration_s`.
    pub achieved: f64,
}

/// The three latency views.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// From the intended start to the end (coordinated-omission corrected).
    pub response: LatencyStats,
    /// From the request going out to the end.
    pub service: LatencyStats,
    /// From the intended start to the request going out.
    pub lag: LatencyStats,
}

/// One latency view, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// One threshold's final result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// The metric name (`latency`, `errors`, ...).
    pub metric: String,
    /// The expression as written (`p(99)<50`).
    pub expr: String,
    /// Whether it held.
    pub ok: bool,
    /// The value it was compared with; `null` when the metric had no value (which passes).
    pub value: Option<f64>,
}

/// The summary of `stampede run`: the job's state, its runs rebuilt from events, every
/// reporter's verdict, and one [`Summary`] per load step per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`SUMMARY_SCHEMA`].
    pub schema: String,
    /// Failed when a reporter failed or the job did not complete.
    pub status: Status,
    /// The name of the job.
    pub name: String,
    /// The job's id in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// How the job ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<job::JobState>,
    /// One entry per load step that ran on a target, in order.
    pub steps: Vec<StepSummary>,
    /// Steps that some target did not reach (it failed earlier, or a load step stopped the
    /// run early), as `test/step`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Every run's status: tests, steps, targets and the run reporters' verdicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<job::RunStatus>,
    /// The final reporters' verdicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_reports: Vec<job::Report>,
    /// One entry per robustness step that ran on a target, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub robustness: Vec<robustness::RobustnessSummary>,
}

/// One step's summary with its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// `test/step`.
    pub name: String,
    /// The target it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The step's figures.
    #[serde(flatten)]
    pub summary: Summary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_the_documented_shape() {
        let summary = Summary {
            schema: SUMMARY_SCHEMA.into(),
            status: Status::Passed,
            duration_s: 1.0,
            requests: Requests::default(),
            rate: Rate {
                target: None,
                achieved: 0.0,
            },
            latency_ms: Latencies::default(),
            thresholds: vec![],
            failures: BTreeMap::new(),
            dropped: BTreeMap::new(),
            stopped_early: None,
            reasons: Vec::new(),
        };
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["schema"], "stampede.summary/v1");
        assert_eq!(json["status"], "passed");
        assert!(json["rate"]["target"].is_null());
        for view in ["response", "service", "lag"] {
            for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
                assert!(json["latency_ms"][view][key].is_number(), "{view}.{key}");
            }
        }
        for key in ["total", "ok", "failed", "dropped"] {
            assert!(json["requests"][key].is_number(), "{key}");
        }
        let back: Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back, summary);
    }
}
