//! What a `scale` step records: the payload of its `ScaleResults` event, one per target.
//!
//! It holds coder's harness results (totals, elapsed, one record per run) and its
//! latency report generalised to named latencies (the p50 / p95 / p99 of each over the
//! successful runs, nearest rank rounded down). Durations are milliseconds as `f64`, so
//! the text report can be rebuilt from the event to the millisecond.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The results of one scale step on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleResults {
    /// The harness's test name: runs are `<test>/<id>`.
    pub test: String,
    /// The title of the text report, e.g. `Autostart Scale Test Results`.
    pub title: String,
    /// What a run is about (`workspace`); coder's JSON names runs' fields after it.
    pub entity: String,
    /// Runs in all.
    pub total_runs: usize,
    /// Runs that ended without error.
    pub successful_runs: usize,
    /// Runs that failed, timed out, panicked or never started.
    pub failed_runs: usize,
    /// Wall time of all runs, from the first start to the last end, in ms.
    pub elapsed_ms: f64,
    /// Each named latency and its percentiles over the successful runs, in report order.
    pub latencies: Vec<ScaleLatency>,
    /// Every run, in id order.
    pub runs: Vec<ScaleRun>,
    /// Cleanups that failed, as `<full id>: <error>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_errors: Vec<String>,
}

/// One named latency's percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleLatency {
    /// The key: `<key>_p50_ms` in coder's JSON, `<key>_ms` in each run.
    pub key: String,
    /// The heading of its block in the text report.
    pub heading: String,
    /// The mark it is measured from.
    pub from: String,
    /// The mark it is measured to.
    pub to: String,
    /// How many successful runs measured it.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// One run of a scale step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleRun {
    /// `<test>/<id>`.
    pub full_id: String,
    /// The runner's id (`0`, `1`, ...).
    pub id: String,
    /// The name of the run's entity (e.g. its workspace), as the report names it.
    pub name: String,
    /// When it started, µs since the epoch; absent if it never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_us: Option<i64>,
    /// How long it ran, ms.
    pub duration_ms: f64,
    /// Why it failed; absent when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The phase it failed in, e.g. `phase 4 (wait initial build)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The latencies it measured, ms, by key; a latency it never reached is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latencies_ms: BTreeMap<String, f64>,
    /// Its log, kept for failed runs only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub logs: String,
}
