//! Summary statistics of one latency histogram, in milliseconds.

use hdrhistogram::Histogram;

/// The figures a summary shows for one latency view, in milliseconds. All zero when the
/// histogram is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Arithmetic mean.
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
    /// Largest value.
    pub max: f64,
}

/// Microseconds to milliseconds.
pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Stats {
    /// The statistics of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let q = |quantile: f64| ms(h.value_at_quantile(quantile));
        Stats {
            count: h.len(),
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
        let s = Stats::of(&h);
        assert_eq!(s.count, 10_000);
        let close = |got: f64, want: f64| (got - want).abs() / want < 0.002;
        assert!(close(s.p50, 500.0), "{s:?}");
        assert!(close(s.p99, 990.0), "{s:?}");
        assert!(close(s.max, 1000.0), "{s:?}");
        assert!(close(s.mean, 500.05), "{s:?}");
        assert_eq!(Stats::of(&new_histogram()), Stats::default());
    }
}
