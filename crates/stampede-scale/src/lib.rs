//! The scale step's harness, a port of coder's `scaletest/harness` and of the pieces of its
//! autostart test that every scale test needs.
//!
//! * [`Harness`] — runs registered as `<test name>/<id>` ([`Runnable`], optionally
//!   [`Cleanable`]), run once under a run [`Strategy`] and cleaned up under a cleanup one.
//!   Each run gets a [`RunCtx`]: its ids, a [`Ctx`] (cancellation and deadline) and its own
//!   [`Logs`]. A run's error, panic or timeout becomes that run's [`RunFailure`].
//! * [`Strategy`] — linear, concurrent, parallel with a limit, plus per-run timeout and
//!   seeded shuffle wrappers.
//! * [`Results`] — totals and per-run records, with coder's text and JSON layouts.
//! * [`Barrier`] — N runners meet; a runner that leaves early (a dropped [`Participant`])
//!   counts as arrived, so the others never deadlock.
//! * [`Dispatcher`] — one update stream fanned out per runner by key into buffered
//!   [`Updates`]; unknown keys dropped; the end of the source closes every buffer
//!   ([`WaitError::Closed`], "update stream closed").
//! * [`build_updates`] — a "watch all builds" server-sent-event body (such as `stampede
//!   sut`'s `GET /ws/builds/watch`) decoded into [`BuildUpdate`]s for a dispatcher keyed
//!   by workspace name; [`wait_for_build`] is coder's `waitForBuild` over them.
//! * [`decoded`] — any streamed body (server-sent events or newline-delimited JSON, see
//!   [`Format`]) decoded into updates for a dispatcher.
//! * [`LatencyResults`] — named latencies per run, p50/p95/p99 over successful runs by
//!   coder's floor-index rule ([`percentile`]), with coder's text and JSON layouts.
//! * [`step::Scale`] — the `scale` job step: a declared lifecycle per runner (phases of
//!   HTTP calls, waits on update streams or polls, barriers, marks, cleanups) run by the
//!   harness on a job's target; see docs/design/003.
//!
//! ```
//! use stampede_scale::{Barrier, BoxError, Ctx, Harness, RunCtx, Strategy, run_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let barrier = Barrier::new(3);
//! let mut harness = Harness::new(Strategy::Concurrent, Strategy::Linear);
//! for id in 0..3 {
//!     let barrier = barrier.clone();
//!     harness.add_run("herd", &id.to_string(), run_fn(move |ctx: RunCtx| {
//!         let place = barrier.participant();
//!         async move {
//!             if ctx.id() == "0" {
//!                 return Err::<(), BoxError>("setup failed".into()); // leaves the barrier
//!             }
//!             place.wait().await;
//!             ctx.log("through the barrier");
//!             Ok(())
//!         }
//!     }))?;
//! }
//! harness.run(&Ctx::default()).await?;
//! let results = harness.results()?;
//! assert_eq!((results.total_pass, results.total_fail), (2, 1));
//! print!("{}", results.to_text());
//! # Ok(())
//! # }
//! ```

mod barrier;
mod build_updates;
mod ctx;
mod dispatcher;
mod gofmt;
mod harness;
mod latency;
mod results;
mod run;
mod source;
pub mod step;
mod strategy;

pub use barrier::{Barrier, Opened, Participant};
pub use build_updates::{
    BuildStatus, BuildUpdate, BuildWaitError, Transition, build_updates, wait_for_build,
};
pub use ctx::{Ctx, Stopped};
pub use dispatcher::{DEFAULT_CAPACITY, DispatchError, Dispatcher, Updates, WaitError};
pub use gofmt::{duration as go_duration, rfc3339_nano};
pub use harness::{Harness, HarnessError};
pub use latency::{Latency, LatencyResults, LatencyRun, Layout, Percentiles, percentile};
pub use results::{Results, RunResult};
pub use run::{BoxError, Cleanable, LogTee, Logs, RunCtx, RunFailure, RunFn, Runnable, run_fn};
pub use source::{Format, decoded};
pub use strategy::{FnError, Strategy, TestFn};
