//! The job runner, with ConTest's semantics (seeds-spec §2.4-§2.8): runs and the interval
//! between them, tests in order, targets acquired once per test attempt and always released,
//! per-test retries, targets walking the step pipeline independently, reporters after each
//! run and at the end; cancel and pause as two distinct signals.
//!
//! Every state change is an event in the store, written (and awaited) before the runner
//! goes on, so the store always holds what happened, in order: `TargetIn` before
//! `TargetOut` or `TargetErr` for each target and step, `TargetAcquired` before any step
//! event, `TargetReleased` at the end. Job status is rebuilt from those events alone
//! ([`crate::status`]).
//!
//! Pausing: a pausable step (`sleep`) stops where it is and leaves a state; any other step
//! in flight finishes its work; a target between steps stops before the next one. The pause
//! payload ([`PausePayload`]) records the run, test, attempt, targets (kept, not released)
//! and where each target was, and [`run_job`] given that payload carries on from there.
//! Pausing during the run interval (or a retry interval) stores the absolute time the wait
//! ends, so a job resumed later waits only what is left.
//!
//! The runner works on the current thread (`spawn_local`: a load step's observer need not be
//! `Send`), so [`run_job`] must be awaited inside a [`tokio::task::LocalSet`].

mod pipeline;
mod reporters;

pub use reporters::junit_report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_api::job::{
    ErrorPayload, FailedPayload, JobState, JobStatus, PAUSE_PAYLOAD_VERSION, PausePayload,
    RunStarted, Target, events,
};
use stampede_core::{Clock, from_micros};
use stampede_store::{EventQuery, EventStore, JobId, NewJob, StoreError};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use crate::emitter::Emitter;
pub use crate::step::JobObserver;

use crate::descriptor::{Job, Test};
use crate::status::{TestLayout, rebuild};
use crate::targets;

/// Why the runner could not go on: the store failed. (Everything else a job meets is an
/// outcome, recorded in the store.)
#[derive(Debug, Error)]
#[error("the event store failed: {0}")]
pub struct RunError(#[from] pub StoreError);

/// Why a job fails from within; its message is the `JobStateFailed` payload's.
#[derive(Debug, Error)]
pub(crate) enum Fatal {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A step could not run at all.
    #[error("step {label:?} on target {target:?}: {error}")]
    Step {
        /// The step's label.
        label: String,
        /// The target's id.
        target: String,
        /// What the step said.
        error: crate::step::StepError,
    },
    /// The status could not be rebuilt from the store.
    #[error(transparent)]
    Status(#[from] RunError),
    /// The runner cannot go on (a target manager timed out, a state cannot be resumed).
    #[error("{0}")]
    Job(String),
}

/// How a job is stopped from outside.
#[derive(Debug, Clone, Default)]
pub struct JobControl {
    /// Cancel: stop as soon as possible (targets are still released).
    pub cancel: CancellationToken,
    /// Pause: stop where the job can be resumed from.
    pub pause: CancellationToken,
}

/// How a job run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Every run ran. The verdict is the reporters'.
    Completed,
    /// The framework failed: `Job N failed after D: why`.
    Failed(String),
    /// Paused; resume from this payload.
    Paused(PausePayload),
    /// Cancelled.
    Cancelled,
}

impl JobOutcome {
    /// The job state this outcome records.
    pub fn state(&self) -> JobState {
        match self {
            JobOutcome::Completed => JobState::Completed,
            JobOutcome::Failed(_) => JobState::Failed,
            JobOutcome::Paused(_) => JobState::Paused,
            JobOutcome::Cancelled => JobState::Cancelled,
        }
    }
}

/// The tests and step labels of `job`, in order, as the status lists them.
pub fn layout(job: &Job) -> Vec<TestLayout> {
    job.tests
        .iter()
        .map(|test| TestLayout {
            name: test.name.clone(),
            steps: test.steps.iter().map(|s| s.label.clone()).collect(),
        })
        .collect()
}

/// The status of job `job_id`, rebuilt from its events.
pub async fn job_status(
    store: &Arc<dyn EventStore>,
    job_id: JobId,
    job: &Job,
) -> Result<JobStatus, RunError> {
    let events = store
        .events(&EventQuery {
            job_id,
            ..EventQuery::default()
        })
        .await?;
    Ok(rebuild(job_id, &job.name, &layout(job), events))
}

/// Stores a new job (its request: descriptors, requestor, tags) and returns its id. The job
/// is not started: [`run_job`] does that.
pub async fn submit(
    store: &Arc<dyn EventStore>,
    clock: &dyn Clock,
    job: &Job,
    descriptor: &str,
    requestor: &str,
    server_id: &str,
) -> Result<JobId, RunError> {
    let id = store
        .create_job(NewJob {
            name: job.name.clone(),
            requestor: requestor.to_string(),
            server_id: server_id.to_string(),
            requested_at_us: clock.now_us(),
            descriptor: descriptor.to_string(),
            extended_descriptor: job.extended.to_string(),
            tags: job.tags.clone(),
            state: JobState::Unknown.name().to_string(),
            project: stampede_store::DEFAULT_PROJECT.to_string(),
        })
        .await?;
    Ok(id)
}

/// Records that a cancel was asked for (`JobStateCancelling`); the runner, seeing
/// [`JobControl::cancel`], winds down and records `JobStateCancelled`.
pub async fn record_cancelling(
    store: &Arc<dyn EventStore>,
    clock: &Arc<dyn Clock>,
    job_id: JobId,
) -> Result<(), RunError> {
    Emitter::new(store.clone(), clock.clone(), job_id)
        .state(JobState::Cancelling, None)
        .await?;
    Ok(())
}

/// Records that a job being cancelled when its server stopped is cancelled (its runner is
/// gone: nothing holds its targets).
pub async fn record_cancelled(
    store: &Arc<dyn EventStore>,
    clock: &Arc<dyn Clock>,
    job_id: JobId,
) -> Result<(), RunError> {
    Emitter::new(store.clone(), clock.clone(), job_id)
        .state(JobState::Cancelled, None)
        .await?;
    Ok(())
}

/// Records that a job failed outside its runner (`why` says how), e.g. a job its server
/// left running (ConTest's zombie) or a paused job that cannot be resumed.
pub async fn record_failure(
    store: &Arc<dyn EventStore>,
    clock: &Arc<dyn Clock>,
    job_id: JobId,
    why: String,
) -> Result<(), RunError> {
    Emitter::new(store.clone(), clock.clone(), job_id)
        .state(
            JobState::Failed,
            Some(serde_json::to_value(FailedPayload { err: why }).expect("serializes")),
        )
        .await?;
    Ok(())
}

/// Records that a job this server left running is dead (ConTest's zombie).
pub async fn record_zombie(
    store: &Arc<dyn EventStore>,
    clock: &Arc<dyn Clock>,
    job_id: JobId,
) -> Result<(), RunError> {
    record_failure(
        store,
        clock,
        job_id,
        format!("Job {job_id} was zombieed: its server stopped while it ran"),
    )
    .await
}

/// The payload of a paused job's latest pause, to resume from; `None` if it never paused.
pub async fn latest_pause(
    store: &Arc<dyn EventStore>,
    job_id: JobId,
) -> Result<Option<Result<PausePayload, String>>, RunError> {
    let events = store
        .events(&EventQuery {
            job_id,
            names: vec![JobState::Paused.event().to_string()],
            ..EventQuery::default()
        })
        .await?;
    Ok(events.last().map(|event| {
        serde_json::from_str(event.payload.as_deref().unwrap_or("null"))
            .map_err(|e| format!("job {job_id}: its pause payload cannot be read: {e}"))
    }))
}

/// Runs job `job_id` (already submitted) to its end, or resumes it from a pause payload,
/// and records its final state. Await it inside a [`tokio::task::LocalSet`].
pub async fn run_job(
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    job_id: JobId,
    job: &Job,
    resume: Option<PausePayload>,
    control: &JobControl,
    observer: &dyn JobObserver,
) -> Result<JobOutcome, RunError> {
    let emitter = Emitter::new(store.clone(), clock, job_id);
    emitter.state(JobState::Started, None).await?;
    tracing::debug!(job = job_id, name = %job.name, resumed = resume.is_some(), "runner started");
    let started = Instant::now();
    let mut runner = Runner {
        store,
        job_id,
        job,
        control,
        observer,
        emitter: emitter.clone(),
    };
    let outcome = match resume {
        Some(payload) if payload.version != PAUSE_PAYLOAD_VERSION => Err(format!(
            "cannot resume: the pause payload is version {}, this stampede reads version {PAUSE_PAYLOAD_VERSION}",
            payload.version
        )),
        resume => runner.runs(resume).await.map_err(|e| e.to_string()),
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(why) => JobOutcome::Failed(format!(
            "Job {job_id} failed after {}: {why}",
            humantime::format_duration(Duration::from_millis(
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
            ))
        )),
    };
    let payload = match &outcome {
        JobOutcome::Failed(err) => {
            Some(serde_json::to_value(FailedPayload { err: err.clone() }).expect("serializes"))
        }
        JobOutcome::Paused(pause) => Some(serde_json::to_value(pause).expect("serializes")),
        JobOutcome::Completed | JobOutcome::Cancelled => None,
    };
    let state = if control.pause.is_cancelled() && matches!(outcome, JobOutcome::Failed(_)) {
        JobState::PauseFailed
    } else {
        outcome.state()
    };
    emitter.state(state, payload).await?;
    match &outcome {
        JobOutcome::Failed(why) => tracing::info!(job = job_id, why = %why, "job failed"),
        _ => tracing::debug!(job = job_id, state = state.name(), "runner ended"),
    }
    Ok(outcome)
}

/// Where a resumed run starts.
struct Resume {
    /// Paused inside a test (the run had started), not between runs.
    mid_run: bool,
    run: u32,
    test: usize,
    attempt: u32,
    wait_until_us: Option<i64>,
    targets: Option<(Vec<Target>, Option<stampede_api::job::TestRunnerState>)>,
}

struct Runner<'a> {
    store: Arc<dyn EventStore>,
    job_id: JobId,
    job: &'a Job,
    control: &'a JobControl,
    observer: &'a dyn JobObserver,
    emitter: Emitter,
}

/// Where a job paused: what its pause payload records.
enum PausedAt {
    /// Waiting for the run to start, until this time (µs).
    RunInterval { until: i64 },
    /// Before test `index` (it starts afresh on resume).
    BeforeTest { index: usize },
    /// Waiting for attempt `attempt` of test `index`, until this time (µs).
    RetryInterval {
        index: usize,
        attempt: u32,
        until: i64,
    },
    /// Inside attempt `attempt` of test `index`, with its targets (kept) and where each
    /// was (`None` before the pipeline started).
    InTest {
        index: usize,
        attempt: u32,
        targets: Vec<Target>,
        state: Option<stampede_api::job::TestRunnerState>,
    },
}

/// What one test attempt came to.
pub(crate) enum Attempt {
    /// It ran: whether every target passed every step.
    Done(bool),
    /// Paused: the pause payload's test part.
    Paused(Vec<Target>, stampede_api::job::TestRunnerState),
    /// Cancelled (targets released).
    Cancelled,
}

/// Waits until `until_us` unless cancelled or paused (a cancel or pause already asked for
/// wins over a wait already over).
async fn wait_until(until_us: i64, control: &JobControl, clock: &dyn Clock) -> WaitEnd {
    tokio::select! {
        biased;
        () = control.cancel.cancelled() => WaitEnd::Cancelled,
        () = control.pause.cancelled() => WaitEnd::Paused,
        () = clock.sleep_until(from_micros(until_us)) => WaitEnd::Elapsed,
    }
}

enum WaitEnd {
    Elapsed,
    Cancelled,
    Paused,
}

fn after(clock: &dyn Clock, duration: Duration) -> i64 {
    clock
        .now_us()
        .saturating_add(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
}

impl Runner<'_> {
    fn clock(&self) -> &dyn Clock {
        self.emitter.clock()
    }

    /// The payload of a pause in run `run`, at `at`.
    fn paused(&self, run: u32, at: PausedAt) -> JobOutcome {
        let mut payload = PausePayload {
            version: PAUSE_PAYLOAD_VERSION,
            job_id: self.job_id,
            run,
            test: None,
            attempt: 0,
            next_attempt_at_us: None,
            start_at_us: None,
            targets: Vec::new(),
            test_runner: None,
        };
        match at {
            PausedAt::RunInterval { until } => payload.start_at_us = Some(until),
            PausedAt::BeforeTest { index } => payload.test = Some(index as u32 + 1),
            PausedAt::RetryInterval {
                index,
                attempt,
                until,
            } => {
                payload.test = Some(index as u32 + 1);
                payload.attempt = attempt;
                payload.next_attempt_at_us = Some(until);
            }
            PausedAt::InTest {
                index,
                attempt,
                targets,
                state,
            } => {
                payload.test = Some(index as u32 + 1);
                payload.attempt = attempt;
                payload.targets = targets;
                payload.test_runner = state;
            }
        }
        JobOutcome::Paused(payload)
    }

    async fn runs(&mut self, resume: Option<PausePayload>) -> Result<JobOutcome, Fatal> {
        let job = self.job;
        let mut resume = resume.map(|p| Resume {
            mid_run: p.test.is_some(),
            run: p.run.max(1),
            test: p.test.map_or(0, |t| t.saturating_sub(1) as usize),
            attempt: p.attempt,
            wait_until_us: p.start_at_us.or(p.next_attempt_at_us),
            targets: (!p.targets.is_empty()).then_some((p.targets, p.test_runner)),
        });
        let first = resume.as_ref().map_or(1, |r| r.run);
        let mut run = first;
        while job.runs == 0 || run <= job.runs {
            // Paused inside a test: the run has started already.
            let mid_run = resume.as_ref().is_some_and(|r| r.mid_run);
            // The interval before every run but the first, or what a pause left of it.
            let wait = match resume.as_mut() {
                Some(r) if !r.mid_run => r.wait_until_us.take(),
                Some(_) => None,
                None if run > first => Some(after(self.clock(), job.run_interval)),
                None => None,
            };
            if !mid_run {
                resume = None;
            }
            if let Some(until) = wait {
                match wait_until(until, self.control, self.clock()).await {
                    WaitEnd::Elapsed => {}
                    WaitEnd::Cancelled => return Ok(JobOutcome::Cancelled),
                    WaitEnd::Paused => {
                        return Ok(self.paused(run, PausedAt::RunInterval { until }));
                    }
                }
            }
            if self.control.cancel.is_cancelled() {
                return Ok(JobOutcome::Cancelled);
            }
            let run_emitter = self.emitter.in_run(run);
            if !mid_run {
                run_emitter
                    .emit(
                        events::RUN_STARTED,
                        Some(serde_json::to_value(RunStarted { run_id: run }).expect("serializes")),
                    )
                    .await?;
                self.observer.note(&format!("run {run} started"));
            }
            let start_test = resume.as_ref().map_or(0, |r| r.test);
            for (index, test) in job.tests.iter().enumerate().skip(start_test) {
                if test.disabled {
                    continue;
                }
                if self.control.cancel.is_cancelled() {
                    return Ok(JobOutcome::Cancelled);
                }
                let this = resume.take().filter(|r| r.test == index);
                if this.is_none() && self.control.pause.is_cancelled() {
                    // Between tests: the next one starts afresh on resume.
                    return Ok(self.paused(run, PausedAt::BeforeTest { index }));
                }
                if let Some(outcome) = self.test(run, index, test, this).await? {
                    return Ok(outcome);
                }
            }
            resume = None;
            if self.control.cancel.is_cancelled() {
                return Ok(JobOutcome::Cancelled);
            }
            reporters::run_reports(&self.store, self.job_id, job, run, &run_emitter).await?;
            run += 1;
        }
        reporters::final_reports(&self.store, self.job_id, job, &self.emitter).await?;
        Ok(JobOutcome::Completed)
    }

    /// Runs a test's attempts; `Some` when the job must stop (paused, cancelled).
    async fn test(
        &mut self,
        run: u32,
        index: usize,
        test: &Test,
        mut resume: Option<Resume>,
    ) -> Result<Option<JobOutcome>, Fatal> {
        let first = resume.as_ref().map_or(0, |r| r.attempt);
        for attempt in first..=test.retries {
            let carried = resume.take();
            let wait = match &carried {
                Some(r) if r.targets.is_none() => r.wait_until_us,
                Some(_) => None,
                None if attempt > first && !test.retry_interval.is_zero() => {
                    Some(after(self.clock(), test.retry_interval))
                }
                None => None,
            };
            if let Some(until) = wait {
                match wait_until(until, self.control, self.clock()).await {
                    WaitEnd::Elapsed => {}
                    WaitEnd::Cancelled => return Ok(Some(JobOutcome::Cancelled)),
                    WaitEnd::Paused => {
                        let at = PausedAt::RetryInterval {
                            index,
                            attempt,
                            until,
                        };
                        return Ok(Some(self.paused(run, at)));
                    }
                }
            }
            let emitter = self.emitter.in_run(run).in_test(&test.name, attempt);
            let saved = carried.and_then(|r| r.targets);
            let targets = match saved {
                Some((targets, state)) => (targets, state),
                None => match self.acquire(test, &emitter).await? {
                    Some(targets) => (targets, None),
                    None => {
                        // The acquire error is this attempt's failure.
                        if self.control.cancel.is_cancelled() {
                            return Ok(Some(JobOutcome::Cancelled));
                        }
                        continue;
                    }
                },
            };
            let (targets, state) = targets;
            if self.control.pause.is_cancelled() && state.is_none() {
                let at = PausedAt::InTest {
                    index,
                    attempt,
                    targets,
                    state: None,
                };
                return Ok(Some(self.paused(run, at)));
            }
            let result = match pipeline::run(
                test,
                &targets,
                state,
                &emitter,
                self.control,
                self.observer,
                &self.job.access,
            )
            .await
            {
                Ok(result) => result,
                Err(fatal) => {
                    // Release is always attempted; the step's failure is what the job reports.
                    let _ = self.release(test, &targets, &emitter).await;
                    return Err(fatal);
                }
            };
            match result {
                Attempt::Paused(targets, state) => {
                    let at = PausedAt::InTest {
                        index,
                        attempt,
                        targets,
                        state: Some(state),
                    };
                    return Ok(Some(self.paused(run, at)));
                }
                other => {
                    self.release(test, &targets, &emitter).await?;
                    match other {
                        Attempt::Cancelled => return Ok(Some(JobOutcome::Cancelled)),
                        Attempt::Done(true) => break,
                        _ => {}
                    }
                }
            }
            if self.control.cancel.is_cancelled() {
                return Ok(Some(JobOutcome::Cancelled));
            }
        }
        Ok(None)
    }

    /// Acquires a test's targets: `Ok(None)` after an acquire error (recorded) or a cancel,
    /// `Err` when the acquire timed out (the job fails).
    async fn acquire(&self, test: &Test, emitter: &Emitter) -> Result<Option<Vec<Target>>, Fatal> {
        let acquiring = tokio::time::timeout(
            test.acquire_timeout,
            targets::acquire(&test.targets, self.job_id, &self.job.access),
        );
        // A cancel stops the acquire, however many targets are being made.
        let acquired = tokio::select! {
            acquired = acquiring => acquired,
            () = self.control.cancel.cancelled() => return Ok(None),
        };
        match acquired {
            Err(_) => Err(Fatal::Job(format!(
                "target manager acquire timed out after {}",
                humantime::format_duration(test.acquire_timeout)
            ))),
            Ok(Err(error)) => {
                emitter
                    .emit(
                        events::TARGET_ACQUIRE_ERR,
                        Some(
                            serde_json::to_value(ErrorPayload {
                                error: error.clone(),
                            })
                            .expect("serializes"),
                        ),
                    )
                    .await?;
                self.observer.note(&format!(
                    "test {}: cannot acquire targets: {error}",
                    test.name
                ));
                Ok(None)
            }
            Ok(Ok(targets)) => {
                for target in &targets {
                    emitter
                        .at(None, Some(&target.id))
                        .emit(events::TARGET_ACQUIRED, None)
                        .await?;
                }
                self.observer.note(&format!(
                    "test {}: {} targets acquired",
                    test.name,
                    targets.len()
                ));
                Ok(Some(targets))
            }
        }
    }

    /// Releases a test's targets; an error or a timeout fails the job.
    async fn release(
        &self,
        test: &Test,
        targets: &[Target],
        emitter: &Emitter,
    ) -> Result<(), Fatal> {
        let released = tokio::time::timeout(
            test.release_timeout,
            targets::release(&test.targets, targets),
        )
        .await;
        match released {
            Err(_) => Err(Fatal::Job(format!(
                "target manager release timed out after {}",
                humantime::format_duration(test.release_timeout)
            ))),
            Ok(Err(e)) => Err(Fatal::Job(format!("target manager release failed: {e}"))),
            Ok(Ok(())) => {
                for target in targets {
                    emitter
                        .at(None, Some(&target.id))
                        .emit(events::TARGET_RELEASED, None)
                        .await?;
                }
                Ok(())
            }
        }
    }
}
