//! Summary statistics of one latency histogram, in milliseconds, as the summary document
//! writes them ([`LatencyStats`]: one type for the figures, here and on the wire).

use hdrhistogram::Histogram;
use stampede_api::LatencyStats;

/// Microseconds to milliseconds.
pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The statistics of a histogram of microseconds, in milliseconds; all zero when it is
/// empty.
pub fn latency_stats(h: &Histogram<u64>) -> LatencyStats {
    if h.is_empty() {
        return LatencyStats::default();
    }
    let q = |quantile: f64| ms(h.value_at_quantile(quantile));
    LatencyStats {
        min: ms(h.min()),
        mean: h.mean() / 1000.0,
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        max: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::new_histogram;

    #[test]
    fn percentiles_of_a_uniform_histogram() {
        let mut h = new_histogram();
        for us in 1..=10_000u64 {
            h.record(us * 100).unwrap();
        }
        let s = latency_stats(&h);
        assert_eq!(h.len(), 10_000);
        let close = |got: f64, want: f64| (got - want).abs() / want < 0.002;
        assert!(close(s.p50, 500.0), "{s:?}");
        assert!(close(s.p99, 990.0), "{s:?}");
        assert!(close(s.max, 1000.0), "{s:?}");
        assert!(close(s.mean, 500.05), "{s:?}");
        assert_eq!(latency_stats(&new_histogram()), LatencyStats::default());
    }
}
