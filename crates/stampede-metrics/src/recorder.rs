//! The per-thread recorder: the sink an engine thread writes to.

use std::cell::RefCell;
use std::time::Instant;

use stampede_core::{DropReason, Sample, Sink};

use crate::snapshot::Snapshot;

/// Records samples into the current interval's [`Snapshot`]. It lives on one thread (no
/// lock); [`Recorder::take`] hands the interval over and starts a fresh one.
#[derive(Debug, Default)]
pub struct Recorder {
    current: RefCell<Snapshot>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// The interval recorded so far; recording goes on into an empty snapshot.
    pub fn take(&self) -> Snapshot {
        std::mem::take(&mut *self.current.borrow_mut())
    }
}

impl Sink for Recorder {
    fn started(&self, _intended: Instant) {
        self.current.borrow_mut().started += 1;
    }

    fn record(&self, sample: &Sample) {
        self.current.borrow_mut().record(sample);
    }

    fn interrupted(&self, _intended: Instant) {
        self.current.borrow_mut().interrupted += 1;
    }

    fn dropped(&self, _intended: Instant, reason: DropReason) {
        self.current.borrow_mut().record_drop(reason);
    }
}
