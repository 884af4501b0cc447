//! The load step's result as the versioned summary document.

use std::collections::BTreeMap;

use stampede_api::{
    Latencies, LatencyStats, Rate, Requests, SUMMARY_SCHEMA, Status, Summary, ThresholdOutcome,
};
use stampede_core::Failure;
use stampede_metrics::Stats;

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

fn failure_name(failure: Failure) -> String {
    match failure {
        Failure::Status(code) => format!("status {code}"),
        other => other.kind().to_string(),
    }
}

impl LoadResult {
    /// The summary document of this step.
    pub fn summary(&self) -> Summary {
        let total = self.metrics.total();
        let (response, service, lag) = self.metrics.stats();
        let mut failures = BTreeMap::new();
        for (failure, n) in &total.failures {
            *failures.entry(failure_name(*failure)).or_default() += n;
        }
        let dropped = total
            .dropped
            .iter()
            .map(|(r, n)| (r.name().to_string(), *n))
            .collect();
        let stopped_early = match (&self.aborted, self.interrupted) {
            (Some(abort), _) => Some(abort.to_string()),
            (None, true) => Some("interrupted by the user".to_string()),
            (None, false) => None,
        };
        Summary {
            schema: SUMMARY_SCHEMA.to_string(),
            status: if self.passed() {
                Status::Passed
            } else {
                Status::Failed
            },
            duration_s: self.metrics.elapsed().as_secs_f64(),
            requests: Requests {
                total: total.requests(),
                ok: total.ok,
                failed: total.failed(),
                dropped: total.dropped_total(),
                interrupted: self.report.interrupted,
            },
            rate: Rate {
                target: self.target_rate,
                achieved: self.metrics.achieved_rate(),
            },
            latency_ms: Latencies {
                response: latency(response),
                service: latency(service),
                lag: latency(lag),
            },
            thresholds: self
                .thresholds
                .iter()
                .map(|t| ThresholdOutcome {
                    metric: t.metric.name().to_string(),
                    expr: t.expr.clone(),
                    ok: t.ok,
                    value: t.value,
                })
                .collect(),
            failures,
            dropped,
            stopped_early,
        }
    }
}
