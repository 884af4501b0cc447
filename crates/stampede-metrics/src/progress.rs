//! A run's progress once a second, and who watches it: the terminal's progress lines, a
//! job server's live view, `--out cloud`'s pusher. Here, beside the snapshots it is made of,
//! so that the job layer can hand a watcher to a load step without knowing the load step.

use std::time::Duration;

use crate::Snapshot;

/// One second of progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Since the start.
    pub elapsed: Duration,
    /// Calls finished per second in the last interval.
    pub rate: f64,
    /// Calls in flight now.
    pub in_flight: u64,
    /// Response-time median of the last interval, ms.
    pub p50_ms: f64,
    /// Response-time 99th percentile of the last interval, ms.
    pub p99_ms: f64,
    /// Calls finished so far.
    pub requests: u64,
    /// Calls failed so far.
    pub errors: u64,
    /// Calls dropped so far.
    pub dropped: u64,
}

/// Sees the run's progress once a second.
pub trait Observer {
    /// Called after each interval has been merged.
    fn interval(&mut self, progress: &Progress);
    /// Called with each interval's merged snapshot, just before [`interval`
    /// ](Observer::interval): every sample of the run is in exactly one of them.
    fn snapshot(&mut self, _elapsed: Duration, _snapshot: &Snapshot) {}
}

impl Observer for () {
    fn interval(&mut self, _: &Progress) {}
}
