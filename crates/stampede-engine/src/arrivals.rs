//! The intended start of every call in the open model, as offsets from the start.
//!
//! Arrival `n` (from 0) of the whole schedule is due when the integral of the rate reaches
//! `n + 1`: for a constant rate that is `(n + 1) / rate`, so the first call comes one period
//! after the start, as with pusher's ticker. A segment owns every `count`-th arrival.

use std::time::Duration;

use crate::schedule::{Schedule, Segment, Stage};

/// The arrivals one worker owns, in order.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    kind: Kind,
    /// Global index of the next arrival this worker owns.
    next: u64,
    step: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Constant { rate: f64 },
    Ramping(Ramp),
}

#[derive(Debug, Clone)]
struct Ramp {
    start_rate: f64,
    stages: Vec<Stage>,
    /// Stage the search is in, with its start offset (s) and the arrivals before it.
    stage: usize,
    stage_start: f64,
    before: f64,
}

/// One due arrival: its offset from the start and the period around it, which bounds how
/// late it may be sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Arrival {
    pub(crate) offset: Duration,
    pub(crate) period: Duration,
}

impl Arrivals {
    /// `None` for the closed model.
    pub(crate) fn new(schedule: &Schedule, segment: Segment) -> Option<Arrivals> {
        let kind = match schedule {
            Schedule::ConstantRate { rate } => Kind::Constant { rate: *rate },
            Schedule::RampingRate { start_rate, stages } => Kind::Ramping(Ramp {
                start_rate: *start_rate,
                stages: stages.clone(),
                stage: 0,
                stage_start: 0.0,
                before: 0.0,
            }),
            Schedule::ConstantVus { .. } => return None,
        };
        Some(Arrivals {
            kind,
            next: segment.index,
            step: segment.count.max(1),
        })
    }

    /// The next arrival this worker owns, without consuming it; `None` once a ramp is over.
    pub(crate) fn peek(&mut self) -> Option<Arrival> {
        let n = self.next as f64 + 1.0;
        match &mut self.kind {
            // Past what a Duration holds the schedule simply ends (about 584 years).
            Kind::Constant { rate } => Some(Arrival {
                offset: Duration::try_from_secs_f64(n / *rate).ok()?,
                period: Duration::try_from_secs_f64(1.0 / *rate).ok()?,
            }),
            Kind::Ramping(ramp) => ramp.time_of(n),
        }
    }

    /// Moves past the arrival `peek` returned.
    pub(crate) fn advance(&mut self) {
        self.next += self.step;
    }
}

impl Ramp {
    /// When the cumulative count reaches `n`; stages are only walked forward, since `n` only
    /// grows.
    fn time_of(&mut self, n: f64) -> Option<Arrival> {
        while let Some(stage) = self.stages.get(self.stage) {
            let from = if self.stage == 0 {
                self.start_rate
            } else {
                self.stages[self.stage - 1].target
            };
            let to = stage.target;
            let d = stage.duration.as_secs_f64();
            let in_stage = (from + to) / 2.0 * d;
            let m = n - self.before;
            if m <= in_stage && in_stage > 0.0 {
                // Solve from·τ + (to − from)·τ²/(2d) = m in the stable form.
                let slope = (to - from) / d;
                let disc = (from * from + 2.0 * slope * m).max(0.0);
                let tau = (2.0 * m / (from + disc.sqrt())).clamp(0.0, d);
                let rate = (from + slope * tau).max(f64::MIN_POSITIVE);
                return Some(Arrival {
                    offset: Duration::try_from_secs_f64(self.stage_start + tau).ok()?,
                    period: Duration::from_secs_f64((1.0 / rate).min(3600.0)),
                });
            }
            self.before += in_stage;
            self.stage_start += d;
            self.stage += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(schedule: &Schedule, segment: Segment, limit: usize) -> Vec<f64> {
        let mut arrivals = Arrivals::new(schedule, segment).unwrap();
        let mut out = Vec::new();
        while let Some(a) = arrivals.peek() {
            out.push(a.offset.as_secs_f64());
            arrivals.advance();
            if out.len() == limit {
                break;
            }
        }
        out
    }

    #[test]
    fn constant_rate_first_tick_one_period_after_start() {
        let got = offsets(&Schedule::ConstantRate { rate: 4.0 }, Segment::WHOLE, 4);
        assert_eq!(got, vec![0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn segments_interleave_into_the_whole() {
        let schedule = Schedule::ConstantRate { rate: 10.0 };
        let whole = offsets(&schedule, Segment::WHOLE, 9);
        let mut merged: Vec<f64> = (0..3)
            .flat_map(|index| offsets(&schedule, Segment { index, count: 3 }, 3))
            .collect();
        merged.sort_by(f64::total_cmp);
        assert_eq!(merged, whole);
    }

    #[test]
    fn ramp_schedules_its_integral() {
        // 0 -> 100/s over 10 s, then 100/s for 5 s: 500 + 500 calls.
        let schedule = Schedule::RampingRate {
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
        let got = offsets(&schedule, Segment::WHOLE, usize::MAX);
        assert_eq!(got.len(), 1000);
        assert!(
            got.windows(2).all(|w| w[0] <= w[1]),
            "offsets must not go back"
        );
        // Half of the ramp's 500 calls are due when t²·5 = 250, i.e. t = √50 ≈ 7.07 s.
        assert!((got[249] - 50f64.sqrt()).abs() < 1e-6, "{}", got[249]);
        assert!((got[999] - 15.0).abs() < 1e-6, "{}", got[999]);
    }

    #[test]
    fn ramp_down_works() {
        let schedule = Schedule::RampingRate {
            start_rate: 100.0,
            stages: vec![Stage {
                duration: Duration::from_secs(2),
                target: 0.0,
            }],
        };
        let got = offsets(&schedule, Segment::WHOLE, usize::MAX);
        assert_eq!(got.len(), 100);
        assert!(got[99] <= 2.0 + 1e-9);
    }
}
