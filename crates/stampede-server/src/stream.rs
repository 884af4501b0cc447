//! Live events: `GET /v1/jobs/{id}/events/stream` serves a job's events as server-sent
//! events while it runs.
//!
//! Each SSE event carries the stored event's sequence number as its `id`, its name as the
//! `event` and the [`ApiEvent`] JSON as the `data`. A reconnecting client sends the last id
//! it saw as `Last-Event-ID` (or `?after=` on a first connection) and gets exactly the events
//! after it: the store, not an in-memory broadcast, is the source, polled every
//! [`POLL`]. The stream ends after a final state event, and once the job is paused with
//! nothing more to send; a request with nothing left to send for a job that ended or is
//! paused gets 204, which tells an `EventSource` to stop reconnecting.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path as UrlPath, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stampede_api::job::JobState;
use stampede_api::server::ApiEvent;
use stampede_store::{Event, EventQuery, JobId, StoreError};

use crate::State;
use crate::auth::Project;
use crate::error::{ApiError, ApiQuery};
use crate::jobs::{api_event, owned};

/// How often the store is asked for new events.
const POLL: Duration = Duration::from_millis(200);
/// How long the stream may stay silent before a comment keeps proxies from closing it.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The most events read from the store at once.
const PAGE: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// The last sequence number already read; `Last-Event-ID` takes precedence.
    after: Option<u64>,
}

pub(crate) async fn stream(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
    UrlPath(id): UrlPath<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // An EventSource reconnects to the same URL with `Last-Event-ID`: the header is newer.
    let after = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Last-Event-ID must be the id of an event this stream sent (a sequence number)",
                    )
                })?,
        ),
        None => query.after,
    };
    // The record is read before the events: a job's state is stored after its state event,
    // so a settled state with no events after `after` means nothing more will come.
    let record = owned(&state, &project, &id).await?;
    let mut first = page(&state, record.id, after).await?;
    if first.is_empty() && settled(&state, record.id, &record.state) {
        // Read again: a job that was resumed and ended in between wrote events.
        first = page(&state, record.id, after).await?;
        if first.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
    let tail = Tail {
        after: first.last().map(|e| e.seq).or(after),
        pending: first.into(),
        state,
        job: record.id,
        paused: record.state == JobState::Paused.name(),
        done: false,
    };
    let events = futures_util::stream::unfold(tail, Tail::next);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// Whether job `job`, in the stored state `stored`, will write no events until someone
/// acts: it ended, or it is paused and not on its way in or out of a pause on this server
/// (a resume answers before the job records `started`).
fn settled(state: &State, job: JobId, stored: &str) -> bool {
    match JobState::from_name(stored) {
        Some(s) if s.is_final() => true,
        Some(JobState::Paused) => !state
            .slots
            .lock()
            .expect("the job table is never poisoned")
            .is_running(job),
        _ => false,
    }
}

async fn page(state: &State, job: JobId, after: Option<u64>) -> Result<Vec<Event>, StoreError> {
    state
        .store
        .events(&EventQuery {
            job_id: job,
            after_seq: after,
            limit: Some(PAGE),
            ..EventQuery::default()
        })
        .await
}

/// Where a stream is: what it has read and not yet sent.
struct Tail {
    state: Arc<State>,
    job: JobId,
    /// The last sequence number read from the store.
    after: Option<u64>,
    pending: VecDeque<Event>,
    /// The last state event sent was `JobStatePaused` (or, before any, the job was paused):
    /// when idle, check whether it stays paused.
    paused: bool,
    done: bool,
}

impl Tail {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Tail)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if let Some(state) = JobState::from_event(&event.name) {
                    self.done = state.is_final();
                    self.paused = state == JobState::Paused;
                }
                return Some((Ok(sse_event(api_event(event))), self));
            }
            match self.read().await {
                Ok(true) => continue,
                Ok(false) if self.done => return None,
                Ok(false) => {}
                Err(e) => {
                    // The client reconnects with `Last-Event-ID` and misses nothing.
                    self.done = true;
                    let comment = format!("the event store failed: {e}").replace(['\r', '\n'], " ");
                    return Some((Ok(SseEvent::default().comment(comment)), self));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.state.stop.cancelled() => return None,
            }
        }
    }

    /// Reads the next page into `pending`: whether there was one. Ends the stream (`done`)
    /// when a paused job stays paused with nothing more to send.
    async fn read(&mut self) -> Result<bool, StoreError> {
        if !self.paused {
            return self.fetch().await;
        }
        if self.fetch().await? {
            return Ok(true);
        }
        // Read the state first: a resume writes `JobStateStarted` before storing the state.
        let still_paused = self
            .state
            .store
            .job(self.job)
            .await?
            .is_some_and(|r| settled(&self.state, self.job, &r.state));
        if !still_paused {
            return Ok(false);
        }
        let more = self.fetch().await?;
        self.done = !more;
        Ok(more)
    }

    async fn fetch(&mut self) -> Result<bool, StoreError> {
        let events = page(&self.state, self.job, self.after).await?;
        if let Some(last) = events.last() {
            self.after = Some(last.seq);
        }
        self.pending.extend(events);
        Ok(!self.pending.is_empty())
    }
}

fn sse_event(event: ApiEvent) -> SseEvent {
    let mut sse = SseEvent::default().id(event.seq.to_string());
    // A name with a line break cannot be an SSE field; the data still carries it.
    if !event.name.contains(['\r', '\n']) {
        sse = sse.event(&event.name);
    }
    match sse.json_data(&event) {
        Ok(sse) => sse,
        Err(e) => SseEvent::default().id(event.seq.to_string()).comment(
            format!("event {} cannot be written: {e}", event.seq).replace(['\r', '\n'], " "),
        ),
    }
}
