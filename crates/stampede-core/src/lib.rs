//! Vocabulary shared by every Stampede crate.
//!
//! This crate has no I/O and almost no dependencies: it names the things the engine, the
//! actions and the metrics talk about, so that none of them has to import another.
//!
//! * [`Sample`] — one finished call: when it was meant to start, when it was sent, when it
//!   ended, and its [`Outcome`].
//! * [`Failure`] — why a call failed; failures under load are samples, never `Err`s that
//!   stop a run (SPEC invariant 3).
//! * [`DropReason`] — why a scheduled call was never made.
//! * [`Sink`] — where the engine writes samples and drops, on the thread that made them.
//! * [`ExitCode`] — the process exit codes, k6's where k6 has one.
//! * [`Clock`] — wall-clock time and waits, passed in: [`SystemClock`], or a
//!   [`ManualClock`] in tests.

mod clock;
mod exit;
mod sample;

pub use clock::{Clock, ManualClock, Sleep, SystemClock, from_micros, micros};
pub use exit::ExitCode;
pub use sample::{DropReason, Failure, Outcome, Sample, Sink};
