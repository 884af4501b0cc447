//! The job endpoints, and the threads that run jobs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use stampede_api::job::{JobState, JobStatus};
use stampede_api::server::{ApiEvent, EventPage, JobCreated, JobEntry, JobList, VersionInfo};
use stampede_api::testrun::{OptionsValid, ValidateOptions};
use stampede_job::runner::{self, JobControl};
use stampede_job::{Job, policy};
use stampede_store::{Event, EventQuery, JobId, JobQuery, JobRecord, NewJob};

use crate::State;
use crate::auth::{Project, Requestor};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::slots::{self, spawn};
use crate::testruns::is_test_run;

/// The most items a page holds.
const MAX_PAGE: u32 = 1000;

pub(crate) async fn version(Extract(state): Extract<Arc<State>>) -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        api: "v1".to_string(),
        server_id: state.server_id.clone(),
    })
}

/// On start, every job of this server that is not in a final state is settled, by its
/// last state event (the column may lag the events in a store written before the two were
/// one transaction), or by the column when it has none: one that never started is started now (it was acknowledged); one that
/// was running is a zombie and fails; one that was being cancelled is cancelled; a paused
/// one resumes, or fails when it cannot; one whose last state is final gets its column
/// set to it. Nothing acknowledged is left in between.
pub(crate) async fn recover(state: &Arc<State>) -> Result<(), String> {
    let unsettled = [
        JobState::Unknown,
        JobState::Started,
        JobState::Paused,
        JobState::Cancelling,
    ];
    let jobs = state
        .store
        .list_jobs(&JobQuery {
            states: unsettled.iter().map(|s| s.name().to_string()).collect(),
            server_id: Some(state.server_id.clone()),
            tags: state.instance_tag.iter().cloned().collect(),
            ..JobQuery::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    for record in jobs {
        if is_test_run(&record) {
            continue;
        }
        let by_events = last_state(state, record.id)
            .await
            .map_err(|e| format!("job {}: {e}", record.id))?;
        let by_column = JobState::from_name(&record.state).unwrap_or(JobState::Unknown);
        let last = by_events.unwrap_or(by_column);
        recover_one(state, &record, last)
            .await
            .map_err(|e| format!("job {}: {e}", record.id))?;
    }
    Ok(())
}

/// Settles one job whose last recorded state is `last`.
async fn recover_one(
    state: &Arc<State>,
    record: &JobRecord,
    last: JobState,
) -> Result<(), runner::RunError> {
    let id = record.id;
    let job = Job::from_extended(&record.extended_descriptor, &state.registry);
    match last {
        JobState::Unknown => match job {
            Ok(job) => {
                tracing::info!(
                    job = id,
                    "recovery: starting a job acknowledged but never started"
                );
                spawn(state, id, job, None, &record.project);
            }
            Err(e) => {
                let why = format!("failed to start job {id}: {e}");
                tracing::warn!(job = id, why = %why, "recovery: the job cannot be started; failed");
                runner::record_failure(&state.store, &state.clock, id, why).await?;
            }
        },
        JobState::Started => {
            tracing::warn!(
                job = id,
                "recovery: the job was running when this server stopped; failed as a zombie"
            );
            runner::record_zombie(&state.store, &state.clock, id).await?;
            slots::remove_dir(state, id);
        }
        JobState::Cancelling => {
            tracing::info!(job = id, "recovery: the job was being cancelled; cancelled");
            runner::record_cancelled(&state.store, &state.clock, id).await?;
            slots::remove_dir(state, id);
        }
        JobState::Paused => {
            let pause = runner::latest_pause(&state.store, id).await?;
            let why = match (job, pause) {
                (Ok(job), Some(Ok(payload))) => {
                    tracing::info!(job = id, "recovery: resuming the paused job");
                    spawn(state, id, job, Some(payload), &record.project);
                    return Ok(());
                }
                (Err(e), _) => e.to_string(),
                (_, Some(Err(e))) => e,
                (_, None) => "it has no pause payload".to_string(),
            };
            // ConTest: a paused job that cannot be resumed fails, with the reason.
            tracing::warn!(job = id, why = %why, "recovery: the paused job cannot be resumed; failed");
            let why = format!("failed to resume job {id}: {why}");
            runner::record_failure(&state.store, &state.clock, id, why).await?;
            slots::remove_dir(state, id);
        }
        // The final event was written but not the column (a store from before the two were
        // one transaction): the column follows the events.
        JobState::Completed
        | JobState::Failed
        | JobState::Cancelled
        | JobState::PauseFailed
        | JobState::CancellationFailed => {
            state.store.set_state(id, None, last.name()).await?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitQuery {
    /// Refused: the requestor is the token's identity. Named here so that a client still
    /// sending it is told why, not that the parameter is unknown.
    requestor: Option<String>,
}

impl SubmitQuery {
    /// Refuses a `?requestor=`, which would let a token submit in another's name.
    fn check(&self, requestor: &str) -> Result<(), ApiError> {
        match &self.requestor {
            Some(_) => Err(ApiError::bad_request(format!(
                "?requestor= is no longer taken: the requestor now comes from the token \
                 (this one submits as {requestor:?}); drop the parameter"
            ))),
            None => Ok(()),
        }
    }
}

pub(crate) async fn submit(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    Extension(Requestor(requestor)): Extension<Requestor>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JobCreated>), ApiError> {
    query.check(&requestor)?;
    let body = body.map_err(|e| ApiError::rejected(e.status(), e.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the descriptor must be UTF-8 text (YAML or JSON)"))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "send the job descriptor (YAML or JSON) as the request body",
        ));
    }
    let job = admit(&state, &project, text).await?;
    let new = NewJob {
        name: job.name.clone(),
        requestor,
        server_id: state.server_id.clone(),
        requested_at_us: state.clock.now_us(),
        descriptor: text.to_string(),
        extended_descriptor: job.extended.to_string(),
        tags: with_instance_tag(&state, job.tags.clone()),
        state: JobState::Unknown.name().to_string(),
        project,
    };
    create(&state, new, job, idempotency_key(&headers)?).await
}

/// `tags` with this server's instance tag, if it has one and they lack it.
fn with_instance_tag(state: &State, mut tags: Vec<String>) -> Vec<String> {
    if let Some(tag) = &state.instance_tag
        && !tags.contains(tag)
    {
        tags.push(tag.clone());
    }
    tags
}

/// The longest `Idempotency-Key` taken (a UUID is 36 characters).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be text"))?;
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(format!(
            "the Idempotency-Key header is {} bytes long; send at most {MAX_IDEMPOTENCY_KEY} \
             (a UUID is 36)",
            key.len()
        )));
    }
    Ok(Some(key))
}

/// Stores `new` (once per idempotency key) and runs `job` if this call created it: 201, or
/// 200 with the earlier job when the key was seen before.
async fn create(
    state: &Arc<State>,
    new: NewJob,
    job: Job,
    key: Option<&str>,
) -> Result<(StatusCode, Json<JobCreated>), ApiError> {
    let (descriptor, project) = (new.descriptor.clone(), new.project.clone());
    let full = state
        .slots
        .lock()
        .expect("the job table is never poisoned")
        .queue_is_full(state);
    if full {
        return Err(ApiError::too_many_requests(
            format!(
                "this server has {} jobs waiting for a slot, the most its policy allows (limits.jobs_queued); submit again later",
                state.policy.limits.jobs_queued
            ),
            Duration::from_secs(30),
        ));
    }
    let (id, created) = match key {
        Some(key) => state.store.create_job_once(key, new).await?,
        None => (state.store.create_job(new).await?, true),
    };
    if !created {
        // A retry repeats its request; another request under the same key is a mistake
        // that would otherwise silently get the old job (k6 and Stripe answer so too).
        let earlier = state.store.job(id).await?;
        if earlier.is_some_and(|earlier| earlier.descriptor != descriptor) {
            return Err(ApiError::unprocessable(format!(
                "the Idempotency-Key {:?} was used for job {id}, with another descriptor; \
                 send a new key for a new job",
                key.unwrap_or_default()
            )));
        }
    }
    let name = job.name.clone();
    if created {
        spawn(state, id, job, None, &project);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(JobCreated {
            job_id: id,
            name,
            created,
            status_url: format!("/v1/jobs/{id}"),
        }),
    ))
}

/// Submits job `id` again, as a new job from its stored descriptors (same name, tags and
/// project; the retrying token's requestor), if it ended or is paused. The old job is left
/// as it is.
pub(crate) async fn retry(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    Extension(Requestor(requestor)): Extension<Requestor>,
    UrlPath(id): UrlPath<String>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<JobCreated>), ApiError> {
    query.check(&requestor)?;
    let record = owned(&state, &project, &id).await?;
    let latest = latest_state(&state, record.id).await?;
    if !(latest.is_final() || latest == JobState::Paused) {
        return Err(ApiError::conflict(format!(
            "job {} is {}: only a completed, failed, cancelled or paused job can be retried; wait for it to end or cancel it first",
            record.id,
            latest.name()
        )));
    }
    // Checked again: the policy may have changed since.
    let job = admit(&state, &project, &record.descriptor).await?;
    let new = NewJob {
        name: record.name,
        requestor,
        server_id: state.server_id.clone(),
        requested_at_us: state.clock.now_us(),
        descriptor: record.descriptor,
        extended_descriptor: record.extended_descriptor,
        tags: with_instance_tag(&state, record.tags),
        state: JobState::Unknown.name().to_string(),
        project: record.project,
    };
    create(&state, new, job, idempotency_key(&headers)?).await
}

/// The state of job `id`'s latest state event (as its status shows it), `unknown` before
/// the first.
async fn latest_state(state: &State, id: JobId) -> Result<JobState, ApiError> {
    Ok(last_state(state, id).await?.unwrap_or(JobState::Unknown))
}

/// The job's last state by its events; `None` when it has no state event.
async fn last_state(
    state: &State,
    id: JobId,
) -> Result<Option<JobState>, stampede_store::StoreError> {
    let events = state
        .store
        .events(&EventQuery {
            job_id: id,
            names: JobState::ALL
                .iter()
                .map(|s| s.event().to_string())
                .collect(),
            ..EventQuery::default()
        })
        .await?;
    Ok(events.last().and_then(|e| JobState::from_event(&e.name)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Comma-separated states (any of them).
    state: Option<String>,
    /// Comma-separated tags (all of them).
    tag: Option<String>,
    /// The last id of the previous page.
    after: Option<u64>,
    /// At most this many (default and most 1000).
    limit: Option<u32>,
}

fn split(list: Option<&str>) -> Vec<String> {
    list.map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(MAX_PAGE),
        Some(0) => Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) if n > MAX_PAGE => Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_PAGE}; page with `after`"
        ))),
        Some(n) => Ok(n),
    }
}

pub(crate) async fn list(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let states = split(query.state.as_deref());
    if let Some(bad) = states.iter().find(|s| JobState::from_name(s).is_none()) {
        let known: Vec<_> = JobState::ALL.iter().map(|s| s.name()).collect();
        return Err(ApiError::bad_request(format!(
            "state {bad:?} is not a job state; use one of {}",
            known.join(", ")
        )));
    }
    let limit = page_limit(query.limit)?;
    let jobs = state
        .store
        .list_jobs(&JobQuery {
            states,
            tags: split(query.tag.as_deref()),
            project: Some(project),
            after_id: query.after,
            limit,
            ..JobQuery::default()
        })
        .await?;
    let next_after = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let jobs = jobs
        .into_iter()
        .map(|j| JobEntry {
            job_id: j.id,
            name: j.name,
            state: JobState::from_name(&j.state).unwrap_or(JobState::Unknown),
            tags: j.tags,
            requestor: j.requestor,
            server_id: j.server_id,
            requested_at_us: j.requested_at_us,
        })
        .collect();
    Ok(Json(JobList { jobs, next_after }))
}

/// The job `id` if the token's project owns it; 404 otherwise (whether it exists is not
/// told to other projects).
pub(crate) async fn owned(state: &State, project: &str, id: &str) -> Result<JobRecord, ApiError> {
    let id: JobId = id.parse().map_err(|_| {
        ApiError::bad_request(format!("{id:?} is not a job id (a positive integer)"))
    })?;
    match state.store.job(id).await? {
        Some(record) if record.project == project => Ok(record),
        _ => Err(ApiError::not_found(format!("there is no job {id}"))),
    }
}

fn rebuild(state: &State, record: &JobRecord) -> Result<Job, ApiError> {
    if is_test_run(record) {
        return Err(ApiError::conflict(format!(
            "job {} is a test run executed elsewhere (stampede run --out cloud): read it at /v1/tests/{}",
            record.id, record.id
        )));
    }
    Job::from_extended(&record.extended_descriptor, &state.registry)
        .map_err(|e| ApiError::internal(format!("job {}: {e}", record.id)))
}

pub(crate) async fn status(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let record = owned(&state, &project, &id).await?;
    let mut status = job_status(&state, &record).await?;
    status.queued = state
        .slots
        .lock()
        .expect("the job table is never poisoned")
        .queued_at(record.id);
    Ok(Json(status))
}

/// The status of a job this server (or another sharing the store) runs, from its events.
pub(crate) async fn job_status(state: &State, record: &JobRecord) -> Result<JobStatus, ApiError> {
    let job = rebuild(state, record)?;
    runner::job_status(&state.store, record.id, &job)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// The last sequence number already read.
    after: Option<u64>,
    /// At most this many (default and most 1000).
    limit: Option<u32>,
}

pub(crate) async fn events(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let record = owned(&state, &project, &id).await?;
    let limit = page_limit(query.limit)?;
    let events = state
        .store
        .events(&EventQuery {
            job_id: record.id,
            after_seq: query.after,
            limit: Some(limit),
            ..EventQuery::default()
        })
        .await?;
    let next_after = events.last().map(|e| e.seq);
    let events = events.into_iter().map(api_event).collect();
    Ok(Json(EventPage { events, next_after }))
}

/// A stored event as the API shows it.
pub(crate) fn api_event(e: Event) -> ApiEvent {
    ApiEvent {
        seq: e.seq,
        run: e.run,
        test: e.test,
        attempt: e.attempt,
        step: e.step,
        target: e.target,
        name: e.name,
        payload: e
            .payload
            .and_then(|p| serde_json::value::RawValue::from_string(p).ok()),
        at_us: e.emitted_at_us,
    }
}

/// The control of job `id` if it runs on this server. A job that has recorded its pause
/// (or its end) is not running, even while its thread is still winding down.
async fn control_of(state: &State, record: &JobRecord) -> Result<JobControl, ApiError> {
    let latest = latest_state(state, record.id).await?;
    let stopped = latest.is_final() || latest == JobState::Paused;
    let control = (!stopped)
        .then(|| {
            state
                .slots
                .lock()
                .expect("the job table is never poisoned")
                .control(record.id)
        })
        .flatten();
    control.ok_or_else(|| {
        ApiError::conflict(format!(
            "job {} is {}, not running on this server ({})",
            record.id,
            latest.name(),
            state.server_id
        ))
    })
}

pub(crate) async fn cancel(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned(&state, &project, &id).await?;
    cancel_job(&state, &record).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Cancels a job this server runs: recorded first, so that `cancelled` follows
/// `cancelling`. A queued job leaves the queue, cancelled before it started.
pub(crate) async fn cancel_job(state: &State, record: &JobRecord) -> Result<(), ApiError> {
    let was_queued = state
        .slots
        .lock()
        .expect("the job table is never poisoned")
        .dequeue(record.id);
    if was_queued {
        // A resumed job that waited has a directory from before its pause.
        slots::remove_dir(state, record.id);
        let recorded = async {
            runner::record_cancelling(&state.store, &state.clock, record.id).await?;
            runner::record_cancelled(&state.store, &state.clock, record.id).await
        };
        return recorded
            .await
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let control = control_of(state, record).await?;
    runner::record_cancelling(&state.store, &state.clock, record.id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    control.cancel.cancel();
    Ok(())
}

pub(crate) async fn pause(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned(&state, &project, &id).await?;
    control_of(&state, &record).await?.pause.cancel();
    Ok(StatusCode::ACCEPTED)
}

pub(crate) async fn resume(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned(&state, &project, &id).await?;
    // Decided by its events, as its status is: a client that saw `paused` can resume.
    let latest = latest_state(&state, record.id).await?;
    if latest != JobState::Paused {
        return Err(ApiError::conflict(format!(
            "job {} is {}, not paused: only a paused job can be resumed",
            record.id,
            latest.name()
        )));
    }
    if !wound_down(&state, record.id).await {
        return Err(ApiError::conflict(format!(
            "job {} is still pausing after {} s; resume it once it is paused",
            record.id,
            WIND_DOWN.as_secs()
        )));
    }
    let job = rebuild(&state, &record)?;
    let payload = runner::latest_pause(&state.store, record.id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::conflict(format!("job {} has no pause to resume from", record.id))
        })?
        .map_err(ApiError::internal)?;
    if !spawn(&state, record.id, job, Some(payload), &record.project) {
        return Err(ApiError::conflict(format!(
            "job {} is already running again: another request resumed it",
            record.id
        )));
    }
    Ok(StatusCode::ACCEPTED)
}

/// How long a resume waits for a job whose pause is recorded to wind down its thread.
const WIND_DOWN: Duration = Duration::from_secs(10);

/// Waits, at most [`WIND_DOWN`], until job `id` no longer runs on this server; whether it
/// stopped. A job that has recorded its pause only has its state column and its thread's
/// end left to do.
async fn wound_down(state: &State, id: JobId) -> bool {
    let deadline = tokio::time::Instant::now() + WIND_DOWN;
    loop {
        let running = state
            .slots
            .lock()
            .expect("the job table is never poisoned")
            .is_running(id);
        if !running {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn validate_options(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    ApiJson(body): ApiJson<ValidateOptions>,
) -> Result<Json<OptionsValid>, ApiError> {
    if !body.options.is_object() {
        return Err(ApiError::bad_request(
            "options must be the job descriptor as a JSON object",
        ));
    }
    let text = body.options.to_string();
    let job = admit(&state, &project, &text).await?;
    Ok(Json(OptionsValid {
        name: job.name,
        tests: job.tests.len(),
    }))
}

/// A descriptor from a request, read as `project`'s jobs may read files, if the server's
/// policy lets `project` run it: 422 with every problem, 403 with what the project may not
/// do and how an admin allows it, or 400.
async fn admit(state: &Arc<State>, project: &str, text: &str) -> Result<Job, ApiError> {
    // Reading files (ConTest's URI fetcher) and resolving host names block: not on the
    // runtime that serves requests.
    let (state, project, text) = (state.clone(), project.to_string(), text.to_string());
    tokio::task::spawn_blocking(move || admit_now(&state, &project, &text))
        .await
        .map_err(|e| ApiError::internal(format!("checking the job failed: {e}")))?
}

fn admit_now(state: &State, project: &str, text: &str) -> Result<Job, ApiError> {
    let files = state.policy.grants(project).access(None, &state.processes);
    let job =
        Job::parse_in(text, "the request body", &files, &state.registry).map_err(|e| match e {
            stampede_job::DescriptorError::Invalid { problems, .. } => {
                ApiError::invalid("the descriptor is invalid", problems)
            }
            stampede_job::DescriptorError::Refused { problems, .. } => ApiError::forbidden(
                format!(
                    "project {project:?} may not run this job on this server: {}; an admin grants a folder with `stampede server --allow files:DIR` or in the server's policy file",
                    problems.join("; ")
                ),
                problems,
            ),
            other => ApiError::bad_request(other.to_string()),
        })?;
    let refusals = state.policy.check(&job, project);
    if refusals.is_empty() {
        return Ok(job);
    }
    let first = &refusals[0];
    Err(ApiError::forbidden(
        format!(
            "project {project:?} may not run this job on this server: {first}{}; {}",
            match refusals.len() {
                1 => String::new(),
                n => format!(" and {} more (see details)", n - 1),
            },
            policy::how_to_allow(project, &refusals)
        ),
        refusals.iter().map(ToString::to_string).collect(),
    ))
}
