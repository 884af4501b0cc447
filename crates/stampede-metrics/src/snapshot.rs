//! Interval snapshots: the histograms and counters of one interval, mergeable exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use stampede_core::{DropReason, Failure, Sample};

/// The highest value a histogram tracks, in microseconds (1 hour); longer values are
/// recorded as 1 hour.
const HIGHEST_US: u64 = 3_600_000_000;

/// Three significant digits: 0.1 % relative precision at any magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The three latency views of every call, in microseconds.
#[derive(Debug, Clone)]
pub struct Views {
    /// From the intended start to the end: what a user felt (coordinated-omission
    /// corrected).
    pub response: Histogram<u64>,
    /// From the request going out to the end.
    pub service: Histogram<u64>,
    /// From the intended start to the request going out.
    pub lag: Histogram<u64>,
}

impl Default for Views {
    fn default() -> Self {
        Views {
            response: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
        }
    }
}

impl Views {
    fn record(&mut self, sample: &Sample) {
        self.response
            .saturating_record(micros(sample.response_time()));
        self.service
            .saturating_record(micros(sample.service_time()));
        self.lag.saturating_record(micros(sample.lag()));
    }

    fn merge(&mut self, other: &Views) {
        // Same bounds on both sides, so `add` cannot fail.
        for (into, from) in [
            (&mut self.response, &other.response),
            (&mut self.service, &other.service),
            (&mut self.lag, &other.lag),
        ] {
            into.add(from).expect("histograms share their bounds");
        }
    }
}

/// Everything recorded in one interval (or, merged, in a whole run).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The latency views of every finished call, failed or not.
    pub views: Views,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed, by failure kind (and status).
    pub failures: BTreeMap<Failure, u64>,
    /// Scheduled calls that were not made, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Calls that started (finished or not).
    pub started: u64,
    /// Calls that started but were cut off by the hard stop.
    pub interrupted: u64,
}

impl Snapshot {
    /// Records one finished call.
    pub fn record(&mut self, sample: &Sample) {
        self.views.record(sample);
        match sample.outcome {
            Ok(()) => self.ok += 1,
            Err(failure) => *self.failures.entry(failure).or_default() += 1,
        }
    }

    /// Counts one dropped call.
    pub fn record_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// Adds `other` into `self`; merging is exact and order does not matter.
    pub fn merge(&mut self, other: &Snapshot) {
        self.views.merge(&other.views);
        self.ok += other.ok;
        self.started += other.started;
        self.interrupted += other.interrupted;
        for (failure, n) in &other.failures {
            *self.failures.entry(*failure).or_default() += n;
        }
        for (reason, n) in &other.dropped {
            *self.dropped.entry(*reason).or_default() += n;
        }
    }

    /// Calls that failed, all kinds together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Finished calls: `ok + failed`.
    pub fn requests(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Calls in flight: started, and neither finished nor interrupted.
    pub fn in_flight(&self) -> u64 {
        self.started
            .saturating_sub(self.requests() + self.interrupted)
    }

    /// Dropped calls, all reasons together.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// The share of finished calls that failed, or `None` before any call finished.
    pub fn error_rate(&self) -> Option<f64> {
        let total = self.requests();
        (total > 0).then(|| self.failed() as f64 / total as f64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Instant;

    pub(crate) fn sample(
        t0: Instant,
        lag_us: u64,
        service_us: u64,
        outcome: stampede_core::Outcome,
    ) -> Sample {
        let sent = t0 + Duration::from_micros(lag_us);
        Sample {
            intended: t0,
            sent,
            done: sent + Duration::from_micros(service_us),
            outcome,
        }
    }

    #[test]
    fn merged_snapshots_equal_one_recorder() {
        let t0 = Instant::now();
        let samples: Vec<Sample> = (0..1000u64)
            .map(|i| {
                let outcome = if i % 7 == 0 {
                    Err(Failure::Status(500))
                } else {
                    Ok(())
                };
                sample(t0, i % 13, 50 + i * 3, outcome)
            })
            .collect();
        let mut whole = Snapshot::default();
        let mut parts = [
            Snapshot::default(),
            Snapshot::default(),
            Snapshot::default(),
        ];
        for (i, s) in samples.iter().enumerate() {
            whole.record(s);
            parts[i % 3].record(s);
        }
        whole.record_drop(DropReason::NoSlot);
        parts[1].record_drop(DropReason::NoSlot);
        let mut merged = Snapshot::default();
        for part in parts.iter().rev() {
            merged.merge(part);
        }
        assert_eq!(merged.views.response, whole.views.response);
        assert_eq!(merged.views.service, whole.views.service);
        assert_eq!(merged.views.lag, whole.views.lag);
        assert_eq!(merged.ok, whole.ok);
        assert_eq!(merged.failures, whole.failures);
        assert_eq!(merged.dropped, whole.dropped);
        assert_eq!(merged.requests(), 1000);
        assert_eq!(merged.failed(), 143);
    }

    #[test]
    fn three_views_record_three_durations() {
        let mut snap = Snapshot::default();
        snap.record(&sample(Instant::now(), 2_000, 8_000, Ok(())));
        assert!(snap.views.lag.equivalent(snap.views.lag.max(), 2_000));
        assert!(
            snap.views
                .service
                .equivalent(snap.views.service.max(), 8_000)
        );
        assert!(
            snap.views
                .response
                .equivalent(snap.views.response.max(), 10_000)
        );
        assert_eq!(snap.error_rate(), Some(0.0));
        assert_eq!(Snapshot::default().error_rate(), None);
    }
}
