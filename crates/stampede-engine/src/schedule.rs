//! When calls happen: the closed set of executors (an enum and a match, not a trait), plus
//! the segment of the schedule one worker owns when a run is split over threads or agents.

use std::time::{Duration, Instant};

use thiserror::Error;

/// One stage of a ramping arrival rate: go linearly to `target` calls per second over
/// `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the ramp lasts.
    pub duration: Duration,
    /// The rate reached at the end of the stage, in calls per second.
    pub target: f64,
}

/// When a worker calls its action.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Open model, pusher's `Work(rps)`: one call every `1 s / rate`, the first one period
    /// after the start.
    ConstantRate {
        /// Calls per second; may be fractional (0.5 = one call every 2 s).
        rate: f64,
    },
    /// Open model with a piecewise-linear rate: starts at `start_rate` and follows the
    /// stages; the worker finishes after the last stage.
    RampingRate {
        /// The rate at the start, in calls per second (may be 0).
        start_rate: f64,
        /// The ramps, in order.
        stages: Vec<Stage>,
    },
    /// Closed model: `vus` virtual users, each calling the action again as soon as its
    /// previous call ended, with no pacing.
    ConstantVus {
        /// Number of virtual users.
        vus: u64,
        /// Stop after this many calls in total (shared by all virtual users).
        iterations: Option<u64>,
    },
}

/// Why a schedule cannot run. Messages follow pusher's `"<kind>: <reason>"` shape.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The rate is zero, negative or not a number.
    #[error("must be positive")]
    NotPositive,
    /// The rate is so high that one period is shorter than a nanosecond.
    #[error("too large, resulting tick < 1ns")]
    TooLarge,
    /// The rate is below one call a day.
    #[error("too small, at least one call a day (0.0000116/s)")]
    TooSmall,
    /// A ramping stage has a bad target or a zero duration.
    #[error("stage {index}: {reason}")]
    BadStage {
        /// Index of the stage, from 0.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A ramp that never schedules a single call.
    #[error("every stage has a zero rate, so no call would ever be made")]
    Empty,
    /// The closed model needs at least one virtual user.
    #[error("the closed model needs at least 1 virtual user")]
    NoVus,
}

impl Schedule {
    /// Checks the schedule; the worker reports a failure as [`crate::WorkError::InvalidRate`].
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let check_rate = |rate: f64| -> Result<(), ScheduleError> {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ScheduleError::NotPositive);
            }
            if rate > 1e9 {
                return Err(ScheduleError::TooLarge);
            }
            if rate < MIN_RATE {
                return Err(ScheduleError::TooSmall);
            }
            Ok(())
        };
        match self {
            Schedule::ConstantRate { rate } => check_rate(*rate),
            Schedule::RampingRate { start_rate, stages } => {
                if !(start_rate.is_finite() && *start_rate >= 0.0) {
                    return Err(ScheduleError::NotPositive);
                }
                if *start_rate > 1e9 {
                    return Err(ScheduleError::TooLarge);
                }
                for (index, stage) in stages.iter().enumerate() {
                    if !(stage.target.is_finite() && stage.target >= 0.0) {
                        let reason = "the target rate must be zero or positive";
                        return Err(ScheduleError::BadStage { index, reason });
                    }
                    if stage.target > 1e9 {
                        return Err(ScheduleError::TooLarge);
                    }
                    if stage.duration.is_zero() {
                        let reason = "the duration must be longer than zero";
                        return Err(ScheduleError::BadStage { index, reason });
                    }
                }
                if self.natural_duration().is_none_or(|d| d > MAX_RAMP) {
                    return Err(ScheduleError::BadStage {
                        index: stages.len().saturating_sub(1),
                        reason: "the stages add up to more than a year",
                    });
                }
                let total: f64 = ramp_total(*start_rate, stages);
                if total < 1.0 {
                    return Err(ScheduleError::Empty);
                }
                Ok(())
            }
            Schedule::ConstantVus { vus, .. } => {
                if *vus == 0 {
                    return Err(ScheduleError::NoVus);
                }
                Ok(())
            }
        }
    }

    /// The highest rate the schedule reaches (calls per second), or `None` in the closed
    /// model. Gossip channels are sized from it (pusher: 2 × rps).
    pub fn peak_rate(&self) -> Option<f64> {
        match self {
            Schedule::ConstantRate { rate } => Some(*rate),
            Schedule::RampingRate { start_rate, stages } => {
                Some(stages.iter().map(|s| s.target).fold(*start_rate, f64::max))
            }
            Schedule::ConstantVus { .. } => None,
        }
    }

    /// The intended starts of the calls `segment` owns, as offsets from the start, in
    /// order; empty for the closed model, endless for a constant rate. This is exactly the
    /// grid the open-model tick loop follows.
    pub fn arrival_offsets(&self, segment: Segment) -> impl Iterator<Item = Duration> + use<> {
        let mut arrivals = crate::arrivals::Arrivals::new(self, segment);
        std::iter::from_fn(move || {
            let arrivals = arrivals.as_mut()?;
            let next = arrivals.peek()?;
            arrivals.advance();
            Some(next.offset)
        })
    }

    /// The mean rate over the schedule (calls per second), or `None` in the closed model.
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            Schedule::ConstantRate { rate } => Some(*rate),
            Schedule::RampingRate { start_rate, stages } => {
                let secs: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
                (secs > 0.0).then(|| ramp_total(*start_rate, stages) / secs)
            }
            Schedule::ConstantVus { .. } => None,
        }
    }

    /// How long the schedule lasts by itself, if it ends by itself (ramps do); `None`
    /// also when the stages add up to more than a `Duration` holds.
    pub fn natural_duration(&self) -> Option<Duration> {
        match self {
            Schedule::RampingRate { stages, .. } => stages
                .iter()
                .try_fold(Duration::ZERO, |total, s| total.checked_add(s.duration)),
            _ => None,
        }
    }
}

/// The lowest constant rate: one call a day. Lower rates are surely mistakes, and their
/// periods would overflow instants.
const MIN_RATE: f64 = 1.0 / 86_400.0;

/// The longest ramp.
const MAX_RAMP: Duration = Duration::from_secs(366 * 24 * 3600);

/// The number of calls a whole ramp schedules.
fn ramp_total(start_rate: f64, stages: &[Stage]) -> f64 {
    let mut from = start_rate;
    let mut total = 0.0;
    for stage in stages {
        total += (from + stage.target) / 2.0 * stage.duration.as_secs_f64();
        from = stage.target;
    }
    total
}

/// The part of a schedule one worker owns when a run is split `count` ways: in the open
/// model, arrivals `index, index + count, index + 2·count, ...` of the whole schedule (so the
/// union is exactly the whole schedule, interleaved); in the closed model, an even share of
/// the virtual users and iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// This worker's index, from 0.
    pub index: u64,
    /// How many segments the schedule is split into.
    pub count: u64,
}

impl Segment {
    /// The whole schedule.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// This segment's share of `total` items split as evenly as possible (the first
    /// `total % count` segments get one more).
    pub fn share(self, total: u64) -> u64 {
        let count = self.count.max(1);
        total / count + u64::from(self.index < total % count)
    }
}

/// A schedule, the segment of it a worker owns, and the instant it starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// When calls happen.
    pub schedule: Schedule,
    /// Which part of the schedule this worker owns.
    pub segment: Segment,
    /// The common start of all segments; `None` = when the worker starts. Workers that
    /// split one schedule must share it.
    pub start: Option<Instant>,
}

impl From<Schedule> for Plan {
    fn from(schedule: Schedule) -> Plan {
        Plan {
            schedule,
            segment: Segment::WHOLE,
            start: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reasons() {
        let check = |s: Schedule, want: Result<(), ScheduleError>| assert_eq!(s.validate(), want);
        check(Schedule::ConstantRate { rate: 100.0 }, Ok(()));
        check(Schedule::ConstantRate { rate: 0.5 }, Ok(()));
        check(
            Schedule::ConstantRate { rate: 0.0 },
            Err(ScheduleError::NotPositive),
        );
        check(
            Schedule::ConstantRate { rate: -1.0 },
            Err(ScheduleError::NotPositive),
        );
        check(
            Schedule::ConstantRate { rate: f64::NAN },
            Err(ScheduleError::NotPositive),
        );
        check(
            Schedule::ConstantRate { rate: 2e9 },
            Err(ScheduleError::TooLarge),
        );
        check(
            Schedule::ConstantVus {
                vus: 0,
                iterations: None,
            },
            Err(ScheduleError::NoVus),
        );
        let stage = |secs, target| Stage {
            duration: Duration::from_secs(secs),
            target,
        };
        check(
            Schedule::RampingRate {
                start_rate: 0.0,
                stages: vec![stage(10, 100.0)],
            },
            Ok(()),
        );
        check(
            Schedule::RampingRate {
                start_rate: 0.0,
                stages: vec![stage(10, 0.0)],
            },
            Err(ScheduleError::Empty),
        );
        check(
            Schedule::RampingRate {
                start_rate: 1.0,
                stages: vec![stage(0, 10.0)],
            },
            Err(ScheduleError::BadStage {
                index: 0,
                reason: "the duration must be longer than zero",
            }),
        );
    }

    #[test]
    fn mean_rate_and_offsets() {
        let ramp = Schedule::RampingRate {
            start_rate: 0.0,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    target: 100.0,
                },
                Stage {
                    duration: Duration::from_secs(5),
                    target: 100.0,
                },
            ],
        };
        assert_eq!(ramp.mean_rate(), Some(1000.0 / 15.0));
        assert_eq!(ramp.arrival_offsets(Segment::WHOLE).count(), 1000);
        assert_eq!(
            Schedule::ConstantVus {
                vus: 1,
                iterations: None
            }
            .mean_rate(),
            None
        );
        let constant = Schedule::ConstantRate { rate: 2.0 };
        let first: Vec<Duration> = constant.arrival_offsets(Segment::WHOLE).take(2).collect();
        assert_eq!(first, [Duration::from_millis(500), Duration::from_secs(1)]);
    }

    #[test]
    fn shares_add_up() {
        for total in [0, 1, 7, 50, 10_001] {
            for count in 1..6 {
                let sum: u64 = (0..count)
                    .map(|index| Segment { index, count }.share(total))
                    .sum();
                assert_eq!(sum, total, "total {total} count {count}");
            }
        }
    }
}
