//! Test runs, k6 cloudapi's way. A run executed elsewhere (`stampede run --out cloud`) is a
//! job of this server's store tagged [`TEST_RUN_TAG`]: it is created, streamed interval
//! snapshots (merged exactly when read), stopped and finished through `/v1/tests`. Progress
//! (`/v1/test-progress/{ref}`) answers for those and for the jobs the server runs itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State as Extract};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use stampede_api::job::{JobState, events as names};
use stampede_api::testrun::{
    CreateTestRun, MetricsAccepted, MetricsPush, ResultStatus, TestFinished, TestProgress, TestRun,
    TestRunCreated, TestRunStatus, TestRunStep, WireSnapshot,
};
use stampede_metrics::{RunMetrics, Snapshot};
use stampede_store::{Event, EventQuery, JobId, JobRecord, NewEvent, NewJob, Seq};

use crate::State;
use crate::auth::{Project, Requestor};
use crate::error::{ApiError, ApiJson};
use crate::jobs::owned;

/// The internal tag of a job that is a test run executed elsewhere.
pub(crate) const TEST_RUN_TAG: &str = "_testrun";

/// Whether the job is a test run executed elsewhere.
pub(crate) fn is_test_run(record: &JobRecord) -> bool {
    record.tags.iter().any(|t| t == TEST_RUN_TAG)
}

/// Where a test run's metrics pushes have got to, so that a push reads only the events
/// stored since the last one.
#[derive(Debug, Default)]
pub(crate) struct PushCursor {
    /// The last snapshot or stop event read.
    after: Option<Seq>,
    /// Snapshots stored.
    stored: u64,
    /// A stop was asked for.
    stop: bool,
}

/// The payload of a `MetricSnapshot` event.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotPayload {
    elapsed_s: f64,
    snapshot: WireSnapshot,
}

fn event(state: &State, id: JobId, name: &str, payload: Option<String>) -> NewEvent {
    NewEvent {
        job_id: id,
        name: name.to_string(),
        payload,
        emitted_at_us: state.clock.now_us(),
        ..NewEvent::default()
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API bodies serialize")
}

pub(crate) async fn create(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    Extension(Requestor(requestor)): Extension<Requestor>,
    ApiJson(body): ApiJson<CreateTestRun>,
) -> Result<(StatusCode, Json<TestRunCreated>), ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name is empty: give the test run a name (stampede uses the job's)",
        ));
    }
    if body.duration < -1 {
        return Err(ApiError::bad_request(format!(
            "duration {} is not a length: give seconds, 0 for endless or -1 for unknown",
            body.duration
        )));
    }
    let text = json(&body);
    let mut tags = vec![TEST_RUN_TAG.to_string()];
    tags.extend(state.instance_tag.clone());
    let id = state
        .store
        .create_job(NewJob {
            name: body.name.clone(),
            requestor,
            // Runs elsewhere: no server recovers it as its own.
            server_id: String::new(),
            requested_at_us: state.clock.now_us(),
            descriptor: text.clone(),
            extended_descriptor: String::new(),
            tags,
            state: JobState::Started.name().to_string(),
            project,
        })
        .await?;
    state
        .store
        .append(&[
            event(&state, id, names::TEST_RUN_CREATED, Some(text)),
            event(&state, id, JobState::Started.event(), None),
        ])
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TestRunCreated {
            reference_id: id.to_string(),
            results_url: format!("/v1/tests/{id}"),
            logs: Vec::new(),
        }),
    ))
}

/// The test run `reference` if the token's project owns it.
async fn test_run(state: &State, project: &str, reference: &str) -> Result<JobRecord, ApiError> {
    let record = owned(state, project, reference).await?;
    if !is_test_run(&record) {
        return Err(ApiError::conflict(format!(
            "job {} runs on a server, not elsewhere: control it through /v1/jobs/{}",
            record.id, record.id
        )));
    }
    Ok(record)
}

fn finished_conflict(id: JobId) -> ApiError {
    ApiError::conflict(format!(
        "test run {id} has finished: it takes no more metrics, stop or finish"
    ))
}

pub(crate) async fn push(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(reference): UrlPath<String>,
    ApiJson(body): ApiJson<MetricsPush>,
) -> Result<Json<MetricsAccepted>, ApiError> {
    let record = test_run(&state, &project, &reference).await?;
    if record.state != JobState::Started.name() {
        return Err(finished_conflict(record.id));
    }
    // Check every snapshot before storing any.
    for (i, s) in body.snapshots.iter().enumerate() {
        Snapshot::from_wire(&s.snapshot)
            .map_err(|e| ApiError::bad_request(format!("snapshots[{i}]: {e}")))?;
        if s.step.is_empty() || s.target.is_empty() {
            return Err(ApiError::bad_request(format!(
                "snapshots[{i}]: name the step (test/step) and the target"
            )));
        }
    }
    let cursor = state.push_cursor(record.id);
    // One push at a time per run, so a retry racing its original stores nothing twice.
    let mut cursor = cursor.lock().await;
    let seen = state
        .store
        .events(&EventQuery {
            job_id: record.id,
            after_seq: cursor.after,
            names: vec![
                names::METRIC_SNAPSHOT.to_string(),
                names::TEST_RUN_STOP.to_string(),
            ],
            limit: None,
        })
        .await?;
    for e in &seen {
        cursor.after = Some(e.seq);
        match e.name.as_str() {
            names::METRIC_SNAPSHOT => cursor.stored += 1,
            _ => cursor.stop = true,
        }
    }
    if body.first > cursor.stored {
        return Err(ApiError::conflict(format!(
            "snapshots {}..{} are missing: the server holds {} of this run; send from there",
            cursor.stored, body.first, cursor.stored
        )));
    }
    // Those below `stored` were stored by an earlier try of this push.
    let skip = usize::try_from(cursor.stored - body.first).unwrap_or(usize::MAX);
    let new: Vec<NewEvent> = body
        .snapshots
        .into_iter()
        .skip(skip)
        .map(|s| NewEvent {
            step: Some(s.step),
            target: Some(s.target),
            ..event(
                &state,
                record.id,
                names::METRIC_SNAPSHOT,
                Some(json(&SnapshotPayload {
                    elapsed_s: s.elapsed_s,
                    snapshot: s.snapshot,
                })),
            )
        })
        .collect();
    if !new.is_empty() {
        let seqs = state.store.append(&new).await?;
        cursor.after = seqs.last().copied().or(cursor.after);
        cursor.stored += new.len() as u64;
    }
    Ok(Json(MetricsAccepted {
        stored: cursor.stored,
        stop: cursor.stop,
    }))
}

pub(crate) async fn finish(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(reference): UrlPath<String>,
    ApiJson(body): ApiJson<TestFinished>,
) -> Result<StatusCode, ApiError> {
    let record = test_run(&state, &project, &reference).await?;
    if !body.run_status.is_final() {
        return Err(ApiError::bad_request(format!(
            "run_status {} ({}) is not a final status: finish with 3 (finished) to 10",
            body.run_status.code(),
            body.run_status.name()
        )));
    }
    let to = match body.run_status {
        TestRunStatus::Finished => JobState::Completed,
        TestRunStatus::AbortedUser => JobState::Cancelled,
        _ => JobState::Failed,
    };
    let started = JobState::Started.name();
    if !state
        .store
        .set_state(record.id, Some(started), to.name())
        .await?
    {
        return Err(finished_conflict(record.id));
    }
    state
        .store
        .append(&[
            event(
                &state,
                record.id,
                names::TEST_RUN_FINISHED,
                Some(json(&body)),
            ),
            event(&state, record.id, to.event(), None),
        ])
        .await?;
    state.forget_push_cursor(record.id);
    Ok(StatusCode::OK)
}

pub(crate) async fn stop(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(reference): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned(&state, &project, &reference).await?;
    if !is_test_run(&record) {
        // A job this server runs: k6's stop is our cancel.
        crate::jobs::cancel_job(&state, &record).await?;
        return Ok(StatusCode::ACCEPTED);
    }
    if record.state != JobState::Started.name() {
        return Err(finished_conflict(record.id));
    }
    state
        .store
        .append(&[event(&state, record.id, names::TEST_RUN_STOP, None)])
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// A test run as its events say.
fn fold(record: &JobRecord, events: Vec<Event>) -> Result<TestRun, ApiError> {
    let broken = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::internal(format!("test run {}: {what}: {e}", record.id))
    };
    let created: CreateTestRun = serde_json::from_str(&record.descriptor)
        .map_err(|e| broken("its creation cannot be read", &e))?;
    let mut finished: Option<TestFinished> = None;
    let mut steps: Vec<(String, String, RunMetrics)> = Vec::new();
    let mut snapshots = 0;
    for e in events {
        match e.name.as_str() {
            names::METRIC_SNAPSHOT => {
                let payload: SnapshotPayload =
                    serde_json::from_str(e.payload.as_deref().unwrap_or_default())
                        .map_err(|e| broken("a snapshot cannot be read", &e))?;
                let snapshot = Snapshot::from_wire(&payload.snapshot)
                    .map_err(|e| broken("a snapshot cannot be read", &e))?;
                let (step, target) = (e.step.unwrap_or_default(), e.target.unwrap_or_default());
                let at = match steps
                    .iter()
                    .position(|(s, t, _)| *s == step && *t == target)
                {
                    Some(at) => at,
                    None => {
                        steps.push((step, target, RunMetrics::new()));
                        steps.len() - 1
                    }
                };
                let elapsed =
                    std::time::Duration::try_from_secs_f64(payload.elapsed_s).unwrap_or_default();
                steps[at].2.add_interval(&snapshot, elapsed);
                snapshots += 1;
            }
            names::TEST_RUN_FINISHED => {
                finished = Some(
                    serde_json::from_str(e.payload.as_deref().unwrap_or_default())
                        .map_err(|e| broken("its finish cannot be read", &e))?,
                );
            }
            _ => {}
        }
    }
    let (run_status, result_status, thresholds) = match finished {
        Some(f) => (f.run_status, f.result_status, f.thresholds),
        None if snapshots > 0 => (
            TestRunStatus::Running,
            ResultStatus::Passed,
            BTreeMap::new(),
        ),
        None => (
            TestRunStatus::Created,
            ResultStatus::Passed,
            BTreeMap::new(),
        ),
    };
    let passed = result_status == ResultStatus::Passed;
    Ok(TestRun {
        reference_id: record.id.to_string(),
        name: record.name.clone(),
        run_status,
        result_status,
        created,
        thresholds,
        snapshots,
        steps: steps
            .into_iter()
            .map(|(step, target, metrics)| TestRunStep {
                step,
                target,
                summary: stampede_metrics::streamed_summary(&metrics, passed),
            })
            .collect(),
    })
}

async fn read(state: &State, record: &JobRecord) -> Result<TestRun, ApiError> {
    let events = state
        .store
        .events(&EventQuery {
            job_id: record.id,
            names: vec![
                names::METRIC_SNAPSHOT.to_string(),
                names::TEST_RUN_FINISHED.to_string(),
            ],
            ..EventQuery::default()
        })
        .await?;
    fold(record, events)
}

pub(crate) async fn get(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(reference): UrlPath<String>,
) -> Result<Json<TestRun>, ApiError> {
    let record = test_run(&state, &project, &reference).await?;
    Ok(Json(read(&state, &record).await?))
}

pub(crate) async fn progress(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(reference): UrlPath<String>,
) -> Result<Json<TestProgress>, ApiError> {
    let record = owned(&state, &project, &reference).await?;
    if !is_test_run(&record) {
        let status = crate::jobs::job_status(&state, &record).await?;
        return Ok(Json(stampede_job::status::test_progress(&status)));
    }
    let run = read(&state, &record).await?;
    let elapsed = run
        .steps
        .iter()
        .map(|s| s.summary.duration_s)
        .fold(0.0, f64::max);
    let progress = match run.created.duration {
        _ if run.run_status.is_final() => 1.0,
        d if d > 0 => (elapsed / d as f64).min(1.0),
        _ => 0.0,
    };
    Ok(Json(TestProgress {
        run_status: run.run_status,
        result_status: run.result_status,
        progress,
    }))
}
