//! `stampede run --out cloud`: the run executes here and streams to a job server, k6's
//! `--out cloud` way. Before the job: a test run is created (name, most VUs, thresholds,
//! planned length). During it: every load step's interval snapshot goes, in order, to the
//! server, which merges them exactly. After it: the run is finished with its run status,
//! result status and threshold results. The server may ask the run to stop (its answer to
//! a push says so); that cancels the job like Ctrl-C.
//!
//! Pushing happens on a thread of its own, so a slow server never slows the engine: the
//! load step's observer only queues snapshots. A push that fails (after the client's own
//! retries) is tried again every second with the same `first`, so nothing is stored twice;
//! at the end the queue is drained before the finish call.

use std::collections::BTreeMap;
use std::time::Duration;

use stampede_api::job::JobStatus;
use stampede_api::testrun::{
    CreateTestRun, MetricsPush, ResultStatus, StepSnapshot, TestFinished, TestRunStatus,
};
use stampede_client::Client;
use stampede_core::ExitCode as Code;
use stampede_job::runner::JobOutcome;
use stampede_job::{Job, Step};
use stampede_load::{Load, LoadStep};
use stampede_metrics::Snapshot;
use stampede_metrics::{Observer, Progress};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Failed;

/// The most snapshots in one push.
const BATCH: usize = 200;
/// How long a failed push waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// After the job ends, how many failed rounds the remaining snapshots get.
const FINAL_ROUNDS: u32 = 10;

/// A test run being streamed to.
pub(crate) struct CloudOut {
    client: Client,
    reference: String,
    queue: mpsc::UnboundedSender<StepSnapshot>,
    pusher: std::thread::JoinHandle<Pushed>,
    /// Cancelled when the server asks the run to stop.
    pub(crate) stop_asked: CancellationToken,
}

/// What the pusher got through.
struct Pushed {
    stored: u64,
    lost: u64,
}

/// What the server is told about the job before it runs: its name, the most connections
/// any load step opens, its thresholds by metric, and its planned length (-1 unknown,
/// 0 endless).
pub(crate) fn announce(job: &Job, name: String) -> CreateTestRun {
    let mut vus = 0;
    let mut seconds = Some(0.0);
    let mut thresholds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let steps = job
        .tests
        .iter()
        .filter(|t| !t.disabled)
        .flat_map(|t| &t.steps)
        .filter(|s| !s.disabled && s.plugin.key() == Load::KEY);
    for step in steps {
        let Some(settings) = serde_json::from_value::<LoadStep>(step.config.clone())
            .ok()
            .and_then(|load| load.settings().ok())
        else {
            continue;
        };
        vus = vus.max(settings.connections);
        seconds = seconds
            .zip(settings.duration)
            .map(|(s, d)| s + d.as_secs_f64());
        for t in &settings.thresholds {
            thresholds
                .entry(t.metric.name().to_string())
                .or_default()
                .push(t.expr.source().to_string());
        }
    }
    let duration = match (job.runs, seconds) {
        (0, _) => 0,
        (runs, Some(s)) => (s * f64::from(runs)).ceil() as i64,
        (_, None) => -1,
    };
    CreateTestRun {
        name,
        vus,
        thresholds,
        duration,
    }
}

impl CloudOut {
    /// Creates the test run and starts the pusher.
    pub(crate) async fn start(client: Client, run: &CreateTestRun) -> Result<CloudOut, Failed> {
        let created = client
            .create_test_run(run)
            .await
            .map_err(|e| Failed::other(format!("cannot create the test run: {e}")))?;
        let reference = created.reference_id;
        for log in &created.logs {
            eprintln!("server ({}): {}", log.level, log.message);
        }
        eprintln!(
            "streaming to test run {reference}: {}{}",
            client.config().server.trim_end_matches('/'),
            created.results_url
        );
        let (queue, rx) = mpsc::unbounded_channel();
        let stop_asked = CancellationToken::new();
        let pusher = {
            let (client, reference, stop) = (client.clone(), reference.clone(), stop_asked.clone());
            std::thread::Builder::new()
                .name("out-cloud".into())
                .spawn(move || push_all(client, reference, rx, stop))
                .map_err(|e| Failed::other(format!("cannot start the metrics pusher: {e}")))?
        };
        Ok(CloudOut {
            client,
            reference,
            queue,
            pusher,
            stop_asked,
        })
    }

    /// The observer of one load step: it passes progress on to `inner` and queues every
    /// interval snapshot.
    pub(crate) fn observe(&self, step: &str, target: &str, inner: Box<dyn Observer>) -> Streamed {
        Streamed {
            inner,
            step: step.to_string(),
            target: target.to_string(),
            queue: self.queue.clone(),
        }
    }

    /// Sends what is left and finishes the test run from how the job ended.
    pub(crate) async fn finish(
        self,
        outcome: &JobOutcome,
        status: &JobStatus,
        code: Code,
    ) -> Result<(), Failed> {
        let CloudOut {
            client,
            reference,
            queue,
            pusher,
            stop_asked,
        } = self;
        drop(queue);
        let pushed = tokio::task::spawn_blocking(move || pusher.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Pushed { stored: 0, lost: 0 });
        let finished = finished(outcome, status, code, stop_asked.is_cancelled());
        client
            .finish_test_run(&reference, &finished)
            .await
            .map_err(|e| Failed::other(format!("cannot finish test run {reference}: {e}")))?;
        eprintln!(
            "test run {reference}: {} ({}), {} snapshots stored",
            finished.run_status.name(),
            if finished.result_status == ResultStatus::Passed {
                "passed"
            } else {
                "failed"
            },
            pushed.stored
        );
        if pushed.lost > 0 {
            return Err(Failed::other(format!(
                "test run {reference}: {} snapshots could not be sent; the server's record is incomplete",
                pushed.lost
            )));
        }
        Ok(())
    }
}

/// k6's mapping of how a local run ended to what the server is told: a clean end is
/// `finished` (its thresholds may still have failed: result failed); a stop from the user
/// or the server is `aborted by user`; a threshold with `abort_on_fail` is `aborted by
/// threshold`; a job that failed is `aborted by script error`.
fn finished(outcome: &JobOutcome, status: &JobStatus, code: Code, stopped: bool) -> TestFinished {
    let summaries = stampede_job::status::load_summaries(&status.runs);
    let aborted_by_threshold = summaries.iter().any(|s| {
        s.summary
            .stopped_early
            .as_deref()
            .is_some_and(|why| why != "interrupted by the user")
    });
    let run_status = match outcome {
        JobOutcome::Completed if aborted_by_threshold => TestRunStatus::AbortedThreshold,
        JobOutcome::Completed if stopped => TestRunStatus::AbortedUser,
        JobOutcome::Completed => TestRunStatus::Finished,
        JobOutcome::Cancelled | JobOutcome::Paused(_) => TestRunStatus::AbortedUser,
        JobOutcome::Failed(_) => TestRunStatus::AbortedScriptError,
    };
    let result_status = match code {
        Code::ThresholdsCrossed | Code::RunFailed => ResultStatus::Failed,
        _ => ResultStatus::Passed,
    };
    let mut thresholds: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for s in &summaries {
        for t in &s.summary.thresholds {
            let failed = thresholds
                .entry(t.metric.clone())
                .or_default()
                .entry(t.expr.clone())
                .or_default();
            *failed |= !t.ok;
        }
    }
    TestFinished {
        result_status,
        run_status,
        thresholds,
    }
}

/// A load step's observer that also queues its snapshots.
pub(crate) struct Streamed {
    inner: Box<dyn Observer>,
    step: String,
    target: String,
    queue: mpsc::UnboundedSender<StepSnapshot>,
}

impl Observer for Streamed {
    fn interval(&mut self, progress: &Progress) {
        self.inner.interval(progress);
    }

    fn snapshot(&mut self, elapsed: Duration, snapshot: &Snapshot) {
        // The pusher only goes away after the job, so a send cannot fail while it runs.
        let _ = self.queue.send(StepSnapshot {
            step: self.step.clone(),
            target: self.target.clone(),
            elapsed_s: elapsed.as_secs_f64(),
            snapshot: snapshot.to_wire(),
        });
    }
}

/// The pusher thread: sends queued snapshots in order until the queue closes and is empty.
fn push_all(
    client: Client,
    reference: String,
    mut rx: mpsc::UnboundedReceiver<StepSnapshot>,
    stop: CancellationToken,
) -> Pushed {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the metrics pusher: {e}");
            return Pushed { stored: 0, lost: 0 };
        }
    };
    runtime.block_on(async move {
        let mut pending: Vec<StepSnapshot> = Vec::new();
        let mut sent = 0u64;
        let mut closed = false;
        let mut failed_rounds = 0;
        loop {
            if pending.is_empty() && !closed {
                match rx.recv().await {
                    Some(s) => pending.push(s),
                    None => closed = true,
                }
            }
            while pending.len() < BATCH {
                match rx.try_recv() {
                    Ok(s) => pending.push(s),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if pending.is_empty() {
                return Pushed {
                    stored: sent,
                    lost: 0,
                };
            }
            let push = MetricsPush {
                first: sent,
                snapshots: pending.clone(),
            };
            match client.push_metrics(&reference, &push).await {
                Ok(accepted) => {
                    sent += pending.len() as u64;
                    pending.clear();
                    failed_rounds = 0;
                    if accepted.stop && !stop.is_cancelled() {
                        eprintln!("the server asked to stop test run {reference}: stopping");
                        stop.cancel();
                    }
                }
                Err(e) => {
                    eprintln!("cannot send metrics to test run {reference} (will retry): {e}");
                    if closed {
                        failed_rounds += 1;
                        if failed_rounds >= FINAL_ROUNDS {
                            let mut lost = pending.len() as u64;
                            while rx.try_recv().is_ok() {
                                lost += 1;
                            }
                            return Pushed { stored: sent, lost };
                        }
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    })
}
