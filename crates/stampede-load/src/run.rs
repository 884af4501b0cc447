//! Runs a load step: one engine thread per core, each with its own current-thread runtime,
//! worker, connections and recorder; this coordinator merges their per-second snapshots,
//! reports progress, evaluates thresholds every 2 s and stops the threads.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use stampede_core::Failure;
use stampede_engine::Action;
use stampede_engine::{Plan, Schedule, Segment, WorkCtx, WorkError, WorkReport, Worker};
use stampede_http::{HttpAction, HttpPlan};
use stampede_metrics::{
    Abort, EVALUATION_INTERVAL, Observer, Progress, Recorder, RunMetrics, Snapshot,
    ThresholdResult, ThresholdSet,
};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::LoadSettings;

/// How often engine threads hand over their interval.
const INTERVAL: Duration = Duration::from_secs(1);

/// How a run is stopped from outside: `stop` ends the schedule (calls in flight may finish
/// within the graceful stop), `abort` ends the calls in flight too.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Stop scheduling calls (first Ctrl-C).
    pub stop: CancellationToken,
    /// End calls in flight (second Ctrl-C).
    pub abort: CancellationToken,
}

/// Why a load step could not run at all (errors under load are samples, not this).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// An engine thread or its runtime could not start.
    #[error("cannot start an engine thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The engine refused the schedule.
    #[error(transparent)]
    Engine(#[from] WorkError),
    /// An engine thread panicked.
    #[error("an engine thread crashed: {0}")]
    Crashed(String),
}

/// What a load step did.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Every sample, merged.
    pub metrics: RunMetrics,
    /// The engine's own counts, summed over threads.
    pub report: WorkReport,
    /// Final threshold results.
    pub thresholds: Vec<ThresholdResult>,
    /// Set when a threshold with `abort_on_fail` stopped the run.
    pub aborted: Option<Abort>,
    /// Set when the run was stopped from outside (Ctrl-C).
    pub interrupted: bool,
    /// The asked-for rate (mean over a ramp); `None` in the closed model.
    pub target_rate: Option<f64>,
    /// Failed requests alone fail the step (see [`LoadSettings::errors_fail`]).
    /// Read when the run ends, so thresholds added to the settings count.
    pub errors_fail: bool,
}

impl LoadResult {
    /// True when no threshold was crossed, nothing aborted the run, and no request failed
    /// where failures decide.
    pub fn passed(&self) -> bool {
        self.reasons().is_empty()
    }

    /// Why the step failed, in words; empty when it passed.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(abort) = &self.aborted {
            reasons.push(abort.to_string());
        }
        let crossed = self.thresholds.iter().filter(|t| !t.ok);
        reasons
            .extend(crossed.map(|t| format!("threshold {}: {} crossed", t.metric.name(), t.expr)));
        let total = self.metrics.total();
        let failed = total.failed();
        if self.errors_fail && failed > 0 {
            let mut kinds: Vec<(Failure, u64)> =
                total.failures.iter().map(|(f, n)| (*f, *n)).collect();
            kinds.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let kinds: Vec<String> = kinds
                .iter()
                .map(|(failure, n)| format!("{n} {}", failure_in_words(*failure)))
                .collect();
            reasons.push(format!(
                "{failed} of {} requests failed ({}); a load step fails on any failed request: allow them with `allow_errors: true` (quick: --allow-errors), or let a threshold decide (errors: [\"rate<0.01\"])",
                total.requests(),
                kinds.join(", ")
            ));
        }
        reasons
    }
}

/// A failure kind as a user reads it, with what to do where that is clear.
fn failure_in_words(failure: Failure) -> String {
    match failure {
        Failure::Connect => "could not connect (refused, unreachable or unknown host)".into(),
        Failure::Tls => {
            "failed the TLS handshake (a certificate not trusted? --insecure or `insecure: true` accepts any)".into()
        }
        Failure::Timeout => "timed out".into(),
        Failure::Reset => "were cut off by the server".into(),
        Failure::Status(code) => format!("answered status {code}"),
        Failure::Check => "failed a body check".into(),
        other => other.name(),
    }
}

enum Message {
    /// A thread's `index`-th interval (from 1).
    Interval {
        thread: usize,
        index: u64,
        snapshot: Snapshot,
    },
    /// A thread ended: its last, partial interval and how the worker ended.
    Done {
        thread: usize,
        snapshot: Snapshot,
        result: Result<WorkReport, LoadError>,
    },
}

/// What engine threads call: a protocol's plan, cloned to every thread and turned there
/// into the thread's own action (its connections are its own, never shared). HTTP is
/// [`HttpPlan`]; another protocol implements this and runs through the same [`run_load`].
pub trait ActionPlan: Clone + Send + 'static {
    /// The action one engine thread calls.
    type Action: Action;
    /// The action of one engine thread, with its share of the connections.
    fn action(self, connections: usize) -> Self::Action;
}

impl ActionPlan for HttpPlan {
    type Action = HttpAction;

    fn action(self, connections: usize) -> HttpAction {
        HttpAction::new(self, connections)
    }
}

/// Runs the load to its end (or until `control` stops it) and returns what happened.
pub async fn run_load<P: ActionPlan>(
    settings: &LoadSettings<P>,
    control: &RunControl,
    observer: &mut dyn Observer,
) -> Result<LoadResult, LoadError> {
    let closed = matches!(settings.schedule, Schedule::ConstantVus { .. });
    let cap = if closed {
        settings.connections
    } else {
        settings.max_in_flight
    };
    // Every thread needs a connection and a slot of its own.
    let count = settings
        .threads
        .min(usize::try_from(cap.min(settings.connections).max(1)).unwrap_or(usize::MAX))
        .max(1);
    let stop = control.stop.child_token();
    let abort = control.abort.child_token();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let threads = spawn_threads(settings, count, &stop, &abort, tx)?;

    let mut coordinator = Coordinator::new(settings, count, threads.start);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                coordinator.receive(message, observer);
                if coordinator.abort_now {
                    stop.cancel();
                    abort.cancel();
                }
                if coordinator.live == 0 {
                    break;
                }
            }
            _ = stop.cancelled(), if coordinator.stopped_at.is_none() => {
                coordinator.stopped_at = Some(Instant::now());
                let abort = abort.clone();
                let graceful = settings.graceful_stop;
                tokio::spawn(async move {
                    tokio::time::sleep(graceful).await;
                    abort.cancel();
                });
            }
        }
    }
    threads.join()?;
    coordinator.finish(settings, control)
}

/// The engine threads of one run and their common start.
struct Threads {
    handles: Vec<thread::JoinHandle<()>>,
    start: Instant,
}

impl Threads {
    fn join(self) -> Result<(), LoadError> {
        for handle in self.handles {
            if let Err(panic) = handle.join() {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                return Err(LoadError::Crashed(message));
            }
        }
        Ok(())
    }
}

/// Starts `count` engine threads, waits until each has built its runtime and worker, then
/// gives them one common start a little ahead, so no thread's first ticks are late.
fn spawn_threads<P: ActionPlan>(
    settings: &LoadSettings<P>,
    count: usize,
    stop: &CancellationToken,
    abort: &CancellationToken,
    tx: mpsc::UnboundedSender<Message>,
) -> Result<Threads, LoadError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let mut handles = Vec::with_capacity(count);
    let mut starts = Vec::with_capacity(count);
    let fail = |handles: Vec<thread::JoinHandle<()>>, error: std::io::Error| {
        stop.cancel();
        abort.cancel();
        // Threads waiting for their start see the sender gone and end at once.
        for handle in handles {
            let _ = handle.join();
        }
        LoadError::Thread(error)
    };
    for index in 0..count {
        let segment = Segment {
            index: index as u64,
            count: count as u64,
        };
        let (start_tx, start_rx) = std::sync::mpsc::channel();
        let job = ThreadJob {
            index,
            plan: settings.plan.clone(),
            connections: segment.share(settings.connections).max(1),
            overtime: segment.share(settings.max_in_flight),
            schedule: settings.schedule.clone(),
            segment,
            duration: settings.duration,
            stop: stop.clone(),
            abort: abort.clone(),
            tx: tx.clone(),
            ready: ready_tx.clone(),
            start: start_rx,
        };
        match thread::Builder::new()
            .name(format!("stampede-engine-{index}"))
            .spawn(move || job.run())
        {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                drop(starts);
                return Err(fail(handles, error));
            }
        }
        starts.push(start_tx);
    }
    drop(ready_tx);
    for _ in 0..count {
        // Every thread answers once, even one that could not build its runtime.
        if ready_rx.recv().is_err() {
            break;
        }
    }
    let start = Instant::now() + START_MARGIN;
    for start_tx in starts {
        let _ = start_tx.send(start);
    }
    Ok(Threads { handles, start })
}

/// How far ahead of "all threads ready" the schedule starts.
const START_MARGIN: Duration = Duration::from_millis(2);

/// Merges the threads' intervals into rows, reports progress and evaluates thresholds.
struct Coordinator {
    start: Instant,
    metrics: RunMetrics,
    thresholds: ThresholdSet,
    /// Intervals not yet complete, by index.
    pending: BTreeMap<u64, Snapshot>,
    /// The last interval index each thread delivered; `None` once it is done.
    delivered: Vec<Option<u64>>,
    /// The last row emitted.
    emitted: u64,
    last_row_at: Duration,
    next_evaluation: Duration,
    live: usize,
    report: WorkReport,
    first_error: Option<LoadError>,
    aborted: Option<Abort>,
    abort_now: bool,
    stopped_at: Option<Instant>,
}

impl Coordinator {
    fn new<P>(settings: &LoadSettings<P>, count: usize, start: Instant) -> Coordinator {
        Coordinator {
            start,
            metrics: RunMetrics::new(),
            thresholds: ThresholdSet::new(settings.thresholds.clone()),
            pending: BTreeMap::new(),
            delivered: vec![Some(0); count],
            emitted: 0,
            last_row_at: Duration::ZERO,
            next_evaluation: EVALUATION_INTERVAL,
            live: count,
            report: WorkReport::default(),
            first_error: None,
            aborted: None,
            abort_now: false,
            stopped_at: None,
        }
    }

    fn receive(&mut self, message: Message, observer: &mut dyn Observer) {
        match message {
            Message::Interval {
                thread,
                index,
                snapshot,
            } => {
                self.pending.entry(index).or_default().merge(&snapshot);
                self.delivered[thread] = Some(index);
            }
            Message::Done {
                thread,
                snapshot,
                result,
            } => {
                // The partial interval after the last full one.
                let index = self.delivered[thread].map_or(self.emitted + 1, |last| last + 1);
                self.pending.entry(index).or_default().merge(&snapshot);
                self.delivered[thread] = None;
                self.live -= 1;
                match result {
                    Ok(report) => self.report += report,
                    Err(error) => {
                        self.first_error.get_or_insert(error);
                        self.abort_now = true;
                    }
                }
            }
        }
        // Row k is complete once every running thread has delivered k.
        let complete = self
            .delivered
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(u64::MAX);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > complete {
                break;
            }
            let (index, interval) = entry.remove_entry();
            self.emit(index, &interval, observer);
        }
    }

    fn emit(&mut self, index: u64, interval: &Snapshot, observer: &mut dyn Observer) {
        let elapsed = if self.live == 0 && self.pending.is_empty() {
            self.start.elapsed()
        } else {
            INTERVAL * u32::try_from(index).unwrap_or(u32::MAX)
        };
        let row = self.metrics.add_interval(interval, elapsed);
        self.emitted = index;
        let length = elapsed
            .saturating_sub(self.last_row_at)
            .max(Duration::from_millis(1));
        self.last_row_at = elapsed;
        observer.snapshot(elapsed, interval);
        let total = self.metrics.total();
        observer.interval(&Progress {
            elapsed,
            rate: row.requests as f64 / length.as_secs_f64(),
            in_flight: total.in_flight(),
            p50_ms: row.p50_ms,
            p99_ms: row.p99_ms,
            requests: total.requests(),
            errors: total.failed(),
            dropped: total.dropped_total(),
        });
        let running = self.aborted.is_none() && self.stopped_at.is_none();
        if running && elapsed >= self.next_evaluation {
            self.next_evaluation = elapsed + EVALUATION_INTERVAL;
            self.metrics.set_elapsed(elapsed);
            if let Some(abort) = self.thresholds.evaluate_running(&self.metrics, elapsed) {
                self.aborted = Some(abort);
                self.abort_now = true;
            }
        }
    }

    fn finish<P>(
        mut self,
        settings: &LoadSettings<P>,
        control: &RunControl,
    ) -> Result<LoadResult, LoadError> {
        if let Some(error) = self.first_error {
            return Err(error);
        }
        // Rates are per second of scheduling: the graceful stop adds no time.
        let ended = self.stopped_at.unwrap_or_else(Instant::now);
        let mut active = ended.saturating_duration_since(self.start);
        if let Some(duration) = settings.duration {
            active = active.min(duration);
        }
        self.metrics.set_elapsed(active);
        let thresholds = self.thresholds.evaluate_final(&self.metrics);
        Ok(LoadResult {
            metrics: self.metrics,
            report: self.report,
            thresholds,
            aborted: self.aborted,
            interrupted: control.stop.is_cancelled(),
            target_rate: settings.schedule.mean_rate(),
            errors_fail: settings.errors_fail(),
        })
    }
}

/// What one engine thread needs.
struct ThreadJob<P> {
    index: usize,
    plan: P,
    connections: u64,
    overtime: u64,
    schedule: Schedule,
    segment: Segment,
    duration: Option<Duration>,
    stop: CancellationToken,
    abort: CancellationToken,
    tx: mpsc::UnboundedSender<Message>,
    ready: std::sync::mpsc::Sender<()>,
    start: std::sync::mpsc::Receiver<Instant>,
}

impl<P: ActionPlan> ThreadJob<P> {
    fn run(self) {
        let thread = self.index;
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let result = Err(LoadError::Thread(error));
                let _ = self.tx.send(Message::Done {
                    thread,
                    snapshot: Snapshot::default(),
                    result,
                });
                // Counted as ready so the others are not kept waiting; the coordinator
                // stops the run when it reads the error.
                let _ = self.ready.send(());
                return;
            }
        };
        let recorder = Rc::new(Recorder::new());
        let connections = usize::try_from(self.connections).unwrap_or(usize::MAX);
        let worker = Worker::builder()
            .ident(format!("engine #{thread}"))
            .action(self.plan.action(connections))
            .overtime(i64::try_from(self.overtime).unwrap_or(i64::MAX))
            .sink(recorder.clone())
            .build();
        let _ = self.ready.send(());
        let Ok(start) = self.start.recv() else {
            // The run was called off before it began.
            let result = Ok(WorkReport::default());
            let _ = self.tx.send(Message::Done {
                thread,
                snapshot: Snapshot::default(),
                result,
            });
            return;
        };
        let closed = matches!(self.schedule, Schedule::ConstantVus { .. });
        let ctx = WorkCtx {
            stop: self.stop,
            abort: Some(self.abort),
            deadline: self.duration.and_then(|d| start.checked_add(d)),
        };
        // The closed model starts at once; the open model's ticks count from `start`.
        let plan = Plan {
            schedule: self.schedule,
            segment: self.segment,
            start: (!closed).then_some(start),
        };
        let tx = self.tx;
        tokio::task::LocalSet::new().block_on(&runtime, async move {
            let reporter = {
                let recorder = recorder.clone();
                let tx = tx.clone();
                tokio::task::spawn_local(async move {
                    let mut ticks = tokio::time::interval_at((start + INTERVAL).into(), INTERVAL);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    for index in 1.. {
                        ticks.tick().await;
                        let snapshot = recorder.take();
                        if tx
                            .send(Message::Interval {
                                thread,
                                index,
                                snapshot,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            };
            let result = worker.work(&ctx, &plan).await.map_err(LoadError::from);
            reporter.abort();
            // The coordinator may be gone if the process is exiting; nothing to do then.
            let _ = tx.send(Message::Done {
                thread,
                snapshot: recorder.take(),
                result,
            });
        });
    }
}
