//! The worker: pusher's `Worker`, hired with options and validated only when it works.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_core::Sink;
use thiserror::Error;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::action::Action;
use crate::arrivals::Arrivals;
use crate::calls::{Counts, Shared};
use crate::gossip::{Channels, Gossiper};
use crate::schedule::{Plan, Schedule, ScheduleError};
use crate::{closed, open};

/// Pusher's default concurrency cap.
const DEFAULT_OVERTIME: i64 = 1_000_000;

/// Why `work` refused to start, checked in this order (pusher's order).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WorkError {
    /// The worker was hired without an action.
    #[error("action is missing: not provided")]
    MissingAction,
    /// The schedule's rate (or virtual users, or stages) cannot run.
    #[error("invalid rate: {0}")]
    InvalidRate(#[from] ScheduleError),
    /// The concurrency cap is negative.
    #[error("invalid overtime: must be more or equal zero")]
    InvalidOvertime,
    /// `work` is already running on this worker.
    #[error("worker is busy: try again later")]
    Busy,
    /// The tick timer could not be created (out of file descriptors, say).
    #[error("cannot create the tick timer: {0}")]
    Timer(#[from] std::io::Error),
}

/// How calls are stopped. `stop` ends the schedule (no new calls); `abort` ends the calls in
/// flight. Pusher has one context for both; a graceful run cancels `stop` first and `abort`
/// later.
#[derive(Debug, Clone, Default)]
pub struct WorkCtx {
    /// No new calls once cancelled.
    pub stop: CancellationToken,
    /// In-flight calls end once cancelled; `None` = the same token as `stop`.
    pub abort: Option<CancellationToken>,
    /// Cancels `stop` at this instant.
    pub deadline: Option<Instant>,
}

impl WorkCtx {
    /// One token for everything, like pusher's context.
    pub fn new(token: CancellationToken) -> WorkCtx {
        WorkCtx {
            stop: token,
            abort: None,
            deadline: None,
        }
    }

    /// Pusher's `Work(rps, duration, ...)`: stops and aborts after `duration`.
    pub fn for_duration(duration: Duration) -> WorkCtx {
        WorkCtx {
            stop: CancellationToken::new(),
            abort: None,
            deadline: Some(Instant::now() + duration),
        }
    }

    /// The token that ends in-flight calls.
    pub fn abort_token(&self) -> &CancellationToken {
        self.abort.as_ref().unwrap_or(&self.stop)
    }

    /// A context whose cancellation does not reach this one, but that follows it.
    pub(crate) fn child(&self) -> WorkCtx {
        WorkCtx {
            stop: self.stop.child_token(),
            abort: self.abort.as_ref().map(CancellationToken::child_token),
            deadline: self.deadline,
        }
    }

    pub(crate) fn cancel(&self) {
        self.stop.cancel();
        self.abort_token().cancel();
    }
}

/// What one `work` call did. `scheduled = sent + dropped_no_slot + dropped_late` and
/// `sent = completed + interrupted`, always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkReport {
    /// Calls the schedule asked for.
    pub scheduled: u64,
    /// Calls made.
    pub sent: u64,
    /// Calls that returned.
    pub completed: u64,
    /// Calls ended by the hard stop before they returned.
    pub interrupted: u64,
    /// Ticks that found no free slot (pusher's `canceled`).
    pub dropped_no_slot: u64,
    /// Ticks the generator woke up too late for.
    pub dropped_late: u64,
    /// `canceled` gossip that a full listener missed (counted per listener).
    pub gossip_lost: u64,
}

impl std::ops::AddAssign for WorkReport {
    /// Sums the reports of several workers.
    fn add_assign(&mut self, r: WorkReport) {
        let WorkReport {
            scheduled,
            sent,
            completed,
            interrupted,
            dropped_no_slot,
            dropped_late,
            gossip_lost,
        } = r;
        self.scheduled += scheduled;
        self.sent += sent;
        self.completed += completed;
        self.interrupted += interrupted;
        self.dropped_no_slot += dropped_no_slot;
        self.dropped_late += dropped_late;
        self.gossip_lost += gossip_lost;
    }
}

/// A public copy of a worker's settings (pusher's `Config()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The worker's name.
    pub ident: Arc<str>,
    /// The concurrency cap as given.
    pub overtime: i64,
    /// How many listeners it has.
    pub listeners: usize,
    /// The slots of its gate: the cap, or 0 when the cap is negative.
    pub capacity: u64,
    /// Whether `work` is running.
    pub busy: bool,
}

/// Calls an action on a schedule with a concurrency cap. Hire one with [`Worker::builder`].
pub struct Worker<A> {
    ident: Arc<str>,
    action: Option<Rc<A>>,
    overtime: i64,
    listeners: Vec<Arc<dyn Gossiper>>,
    sink: Rc<dyn Sink>,
    busy: Cell<bool>,
}

/// The options of a worker to hire (pusher's offers). Cloning it shares the action and the
/// listeners, as pusher's `Force` does.
pub struct Hire<A> {
    ident: Arc<str>,
    action: Option<Rc<A>>,
    overtime: i64,
    listeners: Vec<Arc<dyn Gossiper>>,
    sink: Rc<dyn Sink>,
}

impl<A> Clone for Hire<A> {
    fn clone(&self) -> Self {
        Hire {
            ident: self.ident.clone(),
            action: self.action.clone(),
            overtime: self.overtime,
            listeners: self.listeners.clone(),
            sink: self.sink.clone(),
        }
    }
}

impl<A: Action> Default for Hire<A> {
    fn default() -> Self {
        Hire {
            ident: Arc::from("judas"),
            action: None,
            overtime: DEFAULT_OVERTIME,
            listeners: Vec::new(),
            sink: Rc::new(()),
        }
    }
}

impl<A: Action> Hire<A> {
    /// Names the worker (default `judas`).
    pub fn ident(mut self, ident: impl Into<Arc<str>>) -> Self {
        self.ident = ident.into();
        self
    }
    /// What to call.
    pub fn action(self, action: A) -> Self {
        self.shared_action(Rc::new(action))
    }
    /// What to call, shared with other workers on this thread.
    pub fn shared_action(mut self, action: Rc<A>) -> Self {
        self.action = Some(action);
        self
    }
    /// The concurrency cap (default 1,000,000; 0 drops every tick; negative is refused by
    /// `work`).
    pub fn overtime(mut self, overtime: i64) -> Self {
        self.overtime = overtime;
        self
    }
    /// The listeners; replaces any given before (pusher's `WithGossips`).
    pub fn gossips(mut self, listeners: Vec<Arc<dyn Gossiper>>) -> Self {
        self.listeners = listeners;
        self
    }
    /// Where samples and drops are recorded, on this thread.
    pub fn sink(mut self, sink: Rc<dyn Sink>) -> Self {
        self.sink = sink;
        self
    }
    /// The worker. Hiring never fails; `work` validates.
    pub fn build(self) -> Worker<A> {
        Worker {
            ident: self.ident,
            action: self.action,
            overtime: self.overtime,
            listeners: self.listeners,
            sink: self.sink,
            busy: Cell::new(false),
        }
    }
}

impl<A> fmt::Debug for Worker<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("ident", &self.ident)
            .field("overtime", &self.overtime)
            .field("listeners", &self.listeners.len())
            .field("busy", &self.busy.get())
            .finish()
    }
}

impl<A> fmt::Display for Worker<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ident)
    }
}

/// Resets `busy` however `work` ends.
struct BusyGuard<'a>(&'a Cell<bool>);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<A: Action> Worker<A> {
    /// Starts hiring a worker.
    pub fn builder() -> Hire<A> {
        Hire::default()
    }

    /// A copy of the worker's settings.
    pub fn config(&self) -> WorkerConfig {
        WorkerConfig {
            ident: self.ident.clone(),
            overtime: self.overtime,
            listeners: self.listeners.len(),
            capacity: u64::try_from(self.overtime).unwrap_or(0),
            busy: self.busy.get(),
        }
    }

    /// Calls the action on the plan until the schedule ends or `ctx.stop` is cancelled,
    /// then waits for the calls in flight and for every listener to finish.
    pub async fn work(&self, ctx: &WorkCtx, plan: &Plan) -> Result<WorkReport, WorkError> {
        let Some(action) = &self.action else {
            return Err(WorkError::MissingAction);
        };
        plan.schedule.validate()?;
        let Ok(capacity) = u64::try_from(self.overtime) else {
            return Err(WorkError::InvalidOvertime);
        };
        if self.busy.replace(true) {
            return Err(WorkError::Busy);
        }
        let _busy = BusyGuard(&self.busy);
        LocalSet::new()
            .run_until(self.run(action.clone(), capacity, ctx, plan))
            .await
    }

    async fn run(
        &self,
        action: Rc<A>,
        capacity: u64,
        ctx: &WorkCtx,
        plan: &Plan,
    ) -> Result<WorkReport, WorkError> {
        let deadline = ctx.deadline.map(|deadline| {
            let stop = ctx.stop.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep_until(deadline.into()).await;
                stop.cancel();
            })
        });
        let stop = ctx.stop.child_token();
        let channel_capacity = match &plan.schedule {
            Schedule::ConstantVus { vus, .. } => vus.saturating_mul(2),
            other => (other.peak_rate().unwrap_or(1.0) * 2.0).ceil() as u64,
        };
        let channel_capacity = usize::try_from(channel_capacity.min(1 << 20)).unwrap_or(1 << 20);
        let shared = Rc::new(Shared {
            action,
            sink: self.sink.clone(),
            channels: Channels::open(&self.listeners, &self.ident, channel_capacity),
            abort: ctx.abort_token().child_token(),
            counts: Counts::default(),
            capacity,
        });
        let tracker = TaskTracker::new();
        let start = plan.start.unwrap_or_else(Instant::now);
        let outcome = match Arrivals::new(&plan.schedule, plan.segment) {
            Some(arrivals) => {
                open::run(&shared, &tracker, arrivals, start, ctx.deadline, &stop).await
            }
            None => {
                let Schedule::ConstantVus { vus, iterations } = plan.schedule else {
                    unreachable!("only the closed model has no arrivals")
                };
                let vus = plan.segment.share(vus);
                let iterations = iterations.map(|total| plan.segment.share(total));
                closed::run(&shared, &tracker, vus, iterations, &stop);
                Ok(())
            }
        };
        tracker.close();
        tracker.wait().await;
        if let Some(task) = deadline {
            task.abort();
        }
        let shared = Rc::into_inner(shared).expect("every call task has ended");
        let report = shared.counts.report();
        shared.channels.close(&self.listeners).await;
        outcome?;
        Ok(report)
    }
}
