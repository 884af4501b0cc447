//! Live progress, one line a second on standard error (so standard output stays clean for
//! the summary).

use std::io::Write;

use stampede_metrics::{Observer, Progress};

/// Prints progress lines, or nothing.
pub(crate) struct Lines {
    pub(crate) enabled: bool,
}

impl Observer for Lines {
    fn interval(&mut self, p: &Progress) {
        if !self.enabled {
            return;
        }
        let line = format!(
            "[{:>6.1}s] rate {:>9.1}/s  in-flight {:>5}  p50 {:>8.3}ms  p99 {:>8.3}ms  requests {:>9}  errors {:>6}  dropped {:>6}",
            p.elapsed.as_secs_f64(),
            p.rate,
            p.in_flight,
            p.p50_ms,
            p.p99_ms,
            p.requests,
            p.errors,
            p.dropped
        );
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}
