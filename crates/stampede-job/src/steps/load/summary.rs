//! The load step's result as the versioned summary document.

use std::collections::BTreeMap;

use stampede_api::{
    Latencies, LatencyStats, Rate, Requests, SUMMARY_SCHEMA, Status, Summary, ThresholdOutcome,
};
use stampede_metrics::{RunMetrics, Stats};

use super::run::LoadResult;

fn latency(s: Stats) -> LatencyStats {
    LatencyStats {
        min: s.min,
        mean: s.mean,
        p50: s.p50,
        p90: s.p90,
        p95: s.p95,
        p99: s.p99,
        p999: s.p999,
        max: s.max,
    }
}

impl LoadResult {
    /// The summary document of this step.
    pub fn summary(&self) -> Summary {
        let stopped_early = match (&self.aborted, self.interrupted) {
            (Some(abort), _) => Some(abort.to_string()),
            (None, true) => Some("interrupted by the user".to_string()),
            (None, false) => None,
        };
        let mut summary = document(&self.metrics, self.passed(), self.report.interrupted);
        summary.rate.target = self.target_rate;
        summary.stopped_early = stopped_early;
        summary.thresholds = self
            .thresholds
            .iter()
            .map(|t| ThresholdOutcome {
                metric: t.metric.name().to_string(),
                expr: t.expr.clone(),
                ok: t.ok,
                value: t.value,
            })
            .collect();
        summary
    }
}

/// The summary of a load step rebuilt from the interval snapshots a run streamed
/// (`stampede run --out cloud`): its counts, failures, drops and latency views are exactly
/// the run's; the asked-for rate, the threshold values and why the step stopped are known
/// to the run only, and `passed` is the run's verdict.
pub fn streamed_summary(metrics: &RunMetrics, passed: bool) -> Summary {
    document(metrics, passed, metrics.total().interrupted)
}

/// What every summary holds: what the metrics say.
fn document(metrics: &RunMetrics, passed: bool, interrupted: u64) -> Summary {
    let total = metrics.total();
    let (response, service, lag) = metrics.stats();
    let mut failures = BTreeMap::new();
    for (failure, n) in &total.failures {
        *failures.entry(failure.name()).or_default() += n;
    }
    let dropped = total
        .dropped
        .iter()
        .map(|(r, n)| (r.name().to_string(), *n))
        .collect();
    Summary {
        schema: SUMMARY_SCHEMA.to_string(),
        status: if passed {
            Status::Passed
        } else {
            Status::Failed
        },
        duration_s: metrics.elapsed().as_secs_f64(),
        requests: Requests {
            total: total.requests(),
            ok: total.ok,
            failed: total.failed(),
            dropped: total.dropped_total(),
            interrupted,
        },
        rate: Rate {
            target: None,
            achieved: metrics.achieved_rate(),
        },
        latency_ms: Latencies {
            response: latency(response),
            service: latency(service),
            lag: latency(lag),
        },
        thresholds: Vec::new(),
        failures,
        dropped,
        stopped_early: None,
    }
}
