//! Stall mode: the arithmetic of the periodic windows in which the whole server goes quiet.
//!
//! The windows are a pure function of the time since the server started, so every
//! connection and worker agrees on them without sharing state, and tests need no clock.

use std::time::{Duration, Instant};

/// A validated stall schedule: quiet during `[k*every, k*every + for)` for `k >= 1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stall {
    /// When the windows are counted from.
    pub(crate) start: Instant,
    /// Distance between window starts; never zero.
    pub(crate) every: Duration,
    /// Length of each window; shorter than `every`.
    pub(crate) stall_for: Duration,
}

impl Stall {
    /// Waits until the current window ends, or returns at once outside a window.
    pub(crate) async fn wait(&self) {
        let elapsed = self.start.elapsed();
        if let Some(release) = stall_release(elapsed, self.every, self.stall_for) {
            tokio::time::sleep_until((self.start + release).into()).await;
        }
    }
}

/// If `elapsed` (time since start) lies in a stall window, the elapsed time at which it ends.
///
/// Windows are `[k*every, k*every + stall_for)` for `k = 1, 2, ...`; the first `every` after
/// start is never stalled so that a freshly started server answers its first requests.
pub(crate) fn stall_release(
    elapsed: Duration,
    every: Duration,
    stall_for: Duration,
) -> Option<Duration> {
    let every_ns = every.as_nanos();
    if every_ns == 0 {
        return None;
    }
    let elapsed_ns = elapsed.as_nanos();
    let k = elapsed_ns / every_ns;
    let window_start = k * every_ns;
    let window_end = window_start + stall_for.as_nanos();
    if k == 0 || elapsed_ns >= window_end {
        return None;
    }
    // Fits: window_end <= elapsed + stall_for, both of which came from Durations.
    let secs = u64::try_from(window_end / 1_000_000_000).ok()?;
    let nanos = u32::try_from(window_end % 1_000_000_000).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(elapsed_ms: u64, expected_release_ms: Option<u64>) {
        let got = stall_release(
            Duration::from_millis(elapsed_ms),
            Duration::from_millis(400),
            Duration::from_millis(200),
        );
        assert_eq!(
            got,
            expected_release_ms.map(Duration::from_millis),
            "elapsed {elapsed_ms}ms"
        );
    }

    #[test]
    fn no_stall_before_the_first_period() {
        check(0, None);
        check(100, None);
        check(399, None);
    }

    #[test]
    fn stalled_inside_windows_released_at_their_end() {
        check(400, Some(600));
        check(450, Some(600));
        check(599, Some(600));
        check(800, Some(1000));
        check(4_000_150, Some(4_000_200));
    }

    #[test]
    fn free_between_windows() {
        check(600, None);
        check(799, None);
        check(1_000, None);
    }

    #[test]
    fn sub_millisecond_edges() {
        let every = Duration::from_millis(400);
        let stall_for = Duration::from_millis(200);
        let just_before_end = Duration::from_nanos(599_999_999);
        assert_eq!(
            stall_release(just_before_end, every, stall_for),
            Some(Duration::from_millis(600))
        );
        assert_eq!(
            stall_release(Duration::from_nanos(399_999_999), every, stall_for),
            None
        );
    }

    #[test]
    fn zero_period_never_stalls() {
        assert_eq!(
            stall_release(Duration::from_secs(5), Duration::ZERO, Duration::ZERO),
            None
        );
    }
}
