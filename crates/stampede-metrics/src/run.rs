//! The run so far: the merged total and a compact per-second series.

use std::time::Duration;

use crate::snapshot::Snapshot;
use stampede_api::LatencyStats;

use crate::stats::{latency_stats, ms};
use crate::threshold::{Aggregation, Metric, MetricValues};

/// One second of a run, small enough to keep for every second of a long run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IntervalRow {
    /// Seconds since the start at the end of the interval.
    pub elapsed_s: f64,
    /// Calls that finished in the interval.
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// Calls dropped in the interval.
    pub dropped: u64,
    /// Response-time median in the interval, ms.
    pub p50_ms: f64,
    /// Response-time 99th percentile in the interval, ms.
    pub p99_ms: f64,
}

/// The whole run's metrics: fold interval snapshots in with [`RunMetrics::add_interval`].
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    total: Snapshot,
    series: Vec<IntervalRow>,
    elapsed: Duration,
}

impl RunMetrics {
    /// Nothing recorded yet.
    pub fn new() -> RunMetrics {
        RunMetrics::default()
    }

    /// Adds one interval (already merged across threads) that ended `elapsed` after the
    /// start, and returns its row.
    pub fn add_interval(&mut self, interval: &Snapshot, elapsed: Duration) -> IntervalRow {
        self.total.merge(interval);
        self.elapsed = self.elapsed.max(elapsed);
        let response = &interval.views.response;
        let quantile = |q: f64| {
            if response.is_empty() {
                0.0
            } else {
                ms(response.value_at_quantile(q))
            }
        };
        let row = IntervalRow {
            elapsed_s: elapsed.as_secs_f64(),
            requests: interval.requests(),
            failed: interval.failed(),
            dropped: interval.dropped_total(),
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
        };
        self.series.push(row);
        row
    }

    /// Sets the run's length (for rates) without adding data.
    pub fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Everything merged.
    pub fn total(&self) -> &Snapshot {
        &self.total
    }

    /// One row per interval, in order.
    pub fn series(&self) -> &[IntervalRow] {
        &self.series
    }

    /// How long the run has lasted.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Finished calls per second over the run.
    pub fn achieved_rate(&self) -> f64 {
        per_second(self.total.requests(), self.elapsed)
    }

    /// Statistics of the response-time, service-time and lag views.
    pub fn stats(&self) -> (LatencyStats, LatencyStats, LatencyStats) {
        let v = &self.total.views;
        (
            latency_stats(&v.response),
            latency_stats(&v.service),
            latency_stats(&v.lag),
        )
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

impl MetricValues for RunMetrics {
    fn value(&self, metric: Metric, aggregation: &Aggregation) -> Option<f64> {
        let total = &self.total;
        let trend = match metric {
            Metric::Latency => &total.views.response,
            Metric::ServiceTime => &total.views.service,
            Metric::Lag => &total.views.lag,
            Metric::Errors => return total.error_rate(),
            Metric::Requests | Metric::Dropped => {
                let count = match metric {
                    Metric::Requests => total.requests(),
                    _ => total.dropped_total(),
                };
                return match aggregation {
                    Aggregation::Count => Some(count as f64),
                    Aggregation::Rate => Some(per_second(count, self.elapsed)),
                    _ => None,
                };
            }
        };
        if trend.is_empty() {
            return None;
        }
        match aggregation {
            Aggregation::Avg => Some(trend.mean() / 1000.0),
            Aggregation::Min => Some(ms(trend.min())),
            Aggregation::Max => Some(ms(trend.max())),
            Aggregation::Med => Some(ms(trend.value_at_quantile(0.5))),
            Aggregation::P(pct) => Some(ms(trend.value_at_quantile(pct / 100.0))),
            _ => None,
        }
    }

    fn is_empty(&self, metric: Metric) -> bool {
        match metric {
            Metric::Latency
            | Metric::ServiceTime
            | Metric::Lag
            | Metric::Errors
            | Metric::Requests => self.total.requests() == 0,
            Metric::Dropped => self.total.dropped_total() == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{Threshold, ThresholdSet};
    use stampede_core::{DropReason, Failure, Sample};
    use std::time::Instant;

    fn run_with(ok_ms: &[u64], failed: u64, dropped: u64) -> RunMetrics {
        let t0 = Instant::now();
        let mut snap = Snapshot::default();
        for &d in ok_ms {
            let done = t0 + Duration::from_millis(d);
            snap.record(&Sample {
                intended: t0,
                sent: t0,
                done,
                outcome: Ok(()),
            });
        }
        for _ in 0..failed {
            snap.record(&Sample {
                intended: t0,
                sent: t0,
                done: t0,
                outcome: Err(Failure::Timeout),
            });
        }
        for _ in 0..dropped {
            snap.record_drop(DropReason::NoSlot);
        }
        let mut run = RunMetrics::new();
        run.add_interval(&snap, Duration::from_secs(2));
        run
    }

    #[test]
    fn thresholds_read_the_run() {
        let run = run_with(&[10; 98], 2, 4);
        let check = |flag: &str, want: bool| {
            let mut set = ThresholdSet::new(vec![Threshold::parse_flag(flag).unwrap()]);
            let results = set.evaluate_final(&run);
            assert_eq!(results[0].ok, want, "{flag}: {results:?}");
        };
        check("latency: p(50)<11", true);
        check("latency: max<10", false);
        check("errors: rate<0.03", true);
        check("errors: rate<0.01", false);
        check("requests: count==100", true);
        check("requests: rate==50", true);
        check("dropped: count<1", false);
        check("dropped: rate==2", true);
        check("lag: max==0", true);
    }

    #[test]
    fn empty_metrics_give_no_value() {
        let run = RunMetrics::new();
        assert_eq!(run.value(Metric::Latency, &Aggregation::P(99.0)), None);
        assert_eq!(run.value(Metric::Errors, &Aggregation::Rate), None);
        assert!(run.is_empty(Metric::Dropped));
    }
}
