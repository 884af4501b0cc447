//! One call, from `before` gossip to the recorded sample: the part the open and the closed
//! model share.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use stampede_core::{DropReason, Sample, Sink};
use tokio_util::sync::CancellationToken;

use crate::action::{Action, CallCtx};
use crate::gossip::{Channels, Gossip, When};
use crate::worker::WorkReport;

/// What the calls of one `work` share. It lives on the worker's thread only.
pub(crate) struct Shared<A> {
    pub(crate) action: Rc<A>,
    pub(crate) sink: Rc<dyn Sink>,
    pub(crate) channels: Channels,
    pub(crate) abort: CancellationToken,
    pub(crate) counts: Counts,
    /// The concurrency cap (overtime).
    pub(crate) capacity: u64,
}

/// Counters kept without atomics: every call task runs on the worker's thread.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) scheduled: Cell<u64>,
    pub(crate) sent: Cell<u64>,
    pub(crate) completed: Cell<u64>,
    pub(crate) interrupted: Cell<u64>,
    pub(crate) dropped_no_slot: Cell<u64>,
    pub(crate) dropped_late: Cell<u64>,
    pub(crate) gossip_lost: Cell<u64>,
    pub(crate) in_flight: Cell<u64>,
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

impl Counts {
    pub(crate) fn report(&self) -> WorkReport {
        WorkReport {
            scheduled: self.scheduled.get(),
            sent: self.sent.get(),
            completed: self.completed.get(),
            interrupted: self.interrupted.get(),
            dropped_no_slot: self.dropped_no_slot.get(),
            dropped_late: self.dropped_late.get(),
            gossip_lost: self.gossip_lost.get(),
        }
    }
}

/// Releases a call's slot however the call ends. A call that never reached its sample
/// (the hard stop dropped it, or the action panicked) counts as interrupted, so
/// `sent = completed + interrupted` holds even then.
struct Slot<'a> {
    counts: &'a Counts,
    sink: &'a dyn Sink,
    intended: Instant,
    finished: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.finished {
            bump(&self.counts.interrupted);
            self.sink.interrupted(self.intended);
        }
        self.counts.in_flight.set(self.counts.in_flight.get() - 1);
    }
}

impl<A: Action> Shared<A> {
    /// Takes a slot without waiting, or reports that none is free.
    pub(crate) fn try_acquire(&self) -> bool {
        if self.counts.in_flight.get() >= self.capacity {
            return false;
        }
        self.take_slot();
        true
    }

    /// Takes a slot regardless of the cap (the closed model's users are the cap).
    pub(crate) fn take_slot(&self) {
        self.counts.in_flight.set(self.counts.in_flight.get() + 1);
        bump(&self.counts.sent);
    }

    /// Counts a tick that will not be called, and tells the listeners without waiting.
    pub(crate) fn drop_tick(&self, intended: Instant, reason: DropReason) {
        match reason {
            DropReason::Late => bump(&self.counts.dropped_late),
            _ => bump(&self.counts.dropped_no_slot),
        }
        self.sink.dropped(intended, reason);
        if !self.channels.is_empty() {
            let gossip = Gossip {
                when: When::Canceled,
                intended,
                sample: None,
                reason: Some(reason),
            };
            let lost = self.channels.try_send(gossip);
            self.counts
                .gossip_lost
                .set(self.counts.gossip_lost.get() + lost);
        }
    }

    pub(crate) fn count_scheduled(&self) {
        bump(&self.counts.scheduled);
    }

    /// Makes one call that already holds a slot, and releases the slot at the end.
    pub(crate) async fn call(&self, intended: Instant) {
        let mut slot = Slot {
            counts: &self.counts,
            sink: self.sink.as_ref(),
            intended,
            finished: false,
        };
        self.sink.started(intended);
        if !self.channels.is_empty() {
            let before = Gossip {
                when: When::BeforeAction,
                intended,
                sample: None,
                reason: None,
            };
            self.channels.send(before, &self.abort).await;
        }
        let ctx = CallCtx {
            intended,
            abort: self.abort.clone(),
        };
        let completion = tokio::select! {
            biased;
            completion = self.action.call(ctx) => Some(completion),
            _ = self.abort.cancelled() => None,
        };
        // Without a completion the call was cut off: the slot's drop counts it.
        if let Some(completion) = completion {
            let sample = Sample {
                intended,
                sent: completion.sent,
                done: Instant::now(),
                outcome: completion.outcome,
            };
            self.sink.record(&sample);
            bump(&self.counts.completed);
            slot.finished = true;
            if !self.channels.is_empty() {
                let after = Gossip {
                    when: When::AfterAction,
                    intended,
                    sample: Some(sample),
                    reason: None,
                };
                self.channels.send(after, &self.abort).await;
            }
        }
        drop(slot);
    }
}
