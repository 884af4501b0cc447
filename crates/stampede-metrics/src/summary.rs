//! A run's metrics as the versioned summary document (`stampede.summary/v1`): what the
//! load step writes, and what the job server rebuilds from a streamed run's snapshots.

use std::collections::BTreeMap;

use stampede_api::{Latencies, Rate, Requests, SUMMARY_SCHEMA, Status, Summary};

use crate::RunMetrics;

/// The summary of a load step rebuilt from the interval snapshots a run streamed
/// (`stampede run --out cloud`): its counts, failures, drops and latency views are exactly
/// the run's; the asked-for rate, the threshold values and why the step stopped are known
/// to the run only, and `passed` is the run's verdict.
pub fn streamed_summary(metrics: &RunMetrics, passed: bool) -> Summary {
    summary_document(metrics, passed, metrics.total().interrupted)
}

/// What every summary holds: what the metrics say (no target rate, thresholds or reason
/// for stopping early; the run adds those it knows).
pub fn summary_document(metrics: &RunMetrics, passed: bool, interrupted: u64) -> Summary {
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
            response,
            service,
            lag,
        },
        thresholds: Vec::new(),
        failures,
        dropped,
        stopped_early: None,
        reasons: Vec::new(),
    }
}
