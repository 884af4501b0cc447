//! Pusher's engine: a [`Worker`] calls an [`Action`] on a [`Schedule`] with a concurrency
//! cap, and tells [`Gossiper`]s before and after each call and whenever a call is dropped.
//!
//! *What* is called (the action), *when* (the schedule) and *where results go* (the
//! [`Sink`](stampede_core::Sink) and the gossipers) are three independent values.
//!
//! * Open model ([`Schedule::ConstantRate`], [`Schedule::RampingRate`]): ticks on a fixed
//!   grid of intended starts. A tick that finds no free slot is dropped and sends `canceled`
//!   gossip; ticks never accumulate, and a tick the generator itself woke up too late for is
//!   dropped too, so sent + dropped = scheduled, always.
//! * Closed model ([`Schedule::ConstantVus`]): N virtual users call the action back to back.
//! * [`farm`] runs several workers, the first error cancels all; [`force`] hires N identical
//!   workers that share their gossipers.
//!
//! Calls run as local tasks: a worker, its action and its sink live on one thread (one
//! current-thread runtime per core), so recording a sample never takes a lock. Run a worker
//! inside a [`tokio::task::LocalSet`] or with [`Worker::work`] from any async context on a
//! current-thread runtime: `work` makes its own `LocalSet`.
//!
//! ```no_run
//! use std::time::Duration;
//! use stampede_engine::{action_fn, Schedule, Worker, WorkCtx};
//!
//! # async fn demo() {
//! let worker = Worker::builder()
//!     .action(action_fn(|_call| async { Ok::<(), std::io::Error>(()) }))
//!     .overtime(10)
//!     .build();
//! let ctx = WorkCtx::for_duration(Duration::from_secs(1));
//! let report = worker.work(&ctx, &Schedule::ConstantRate { rate: 100.0 }.into()).await.unwrap();
//! println!("{} calls", report.completed);
//! # }
//! ```

mod action;
mod arrivals;
mod calls;
mod closed;
mod farm;
mod gossip;
mod open;
mod schedule;
mod timer;
mod worker;

pub use action::{Action, CallCtx, Completion, FnAction, action_fn};
pub use farm::{farm, force};
pub use gossip::{Gossip, GossipReceiver, Gossiper, When};
pub use schedule::{Plan, Schedule, ScheduleError, Segment, Stage};
pub use timer::RESOLUTION;
pub use worker::{Hire, WorkCtx, WorkError, WorkReport, Worker, WorkerConfig};
