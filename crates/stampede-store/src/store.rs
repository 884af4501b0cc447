//! The [`EventStore`] trait: the one interface the job runner and the server use to keep jobs
//! and their events, whatever database is behind it.
//!
//! The trait is object safe and its futures are `Send`, so it is used as
//! `Arc<dyn EventStore>` from any tokio task. Checks that every backend must make the same
//! way (text they cannot keep) live here too.

use futures_util::future::BoxFuture;

use crate::error::StoreError;
use crate::types::{Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, Seq};

/// Keeps jobs and their append-only events. Events are the truth: job status is rebuilt
/// from them; the `state` column is kept for listing and for compare-and-set transitions.
///
/// Every write is durable when its future resolves: a later read, from this handle or from
/// another one opened on the same URL (in this process or another), sees it.
pub trait EventStore: Send + Sync + 'static {
    /// Stores a new job and returns its id (the first is 1, then increasing).
    fn create_job(&self, job: NewJob) -> BoxFuture<'_, Result<JobId, StoreError>>;

    /// The job with this id, or `None` if the store never assigned it.
    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobRecord>, StoreError>>;

    /// The jobs matching `query`, by id ascending; page with `after_id` and `limit`.
    fn list_jobs<'a>(
        &'a self,
        query: &'a JobQuery,
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>>;

    /// Compare-and-set: sets the job's state to `to` only if it currently equals `from` (or
    /// unconditionally when `from` is `None`) and returns whether it changed.
    /// [`StoreError::NotFound`] for a missing job.
    fn set_state<'a>(
        &'a self,
        id: JobId,
        from: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Appends events atomically (all or none) in the given order and returns their sequence
    /// numbers, in the same order. An event for a missing job is [`StoreError::NotFound`] and
    /// nothing is written.
    fn append<'a>(&'a self, events: &'a [NewEvent]) -> BoxFuture<'a, Result<Vec<Seq>, StoreError>>;

    /// The events matching `query`, by sequence number ascending. A job without events (or
    /// without a record) has none.
    fn events<'a>(&'a self, query: &'a EventQuery)
    -> BoxFuture<'a, Result<Vec<Event>, StoreError>>;
}

/// Refuses a job with text the store cannot keep.
pub(crate) fn check_job(job: &NewJob) -> Result<(), StoreError> {
    let fields = [
        ("job name", &job.name),
        ("job requestor", &job.requestor),
        ("job server id", &job.server_id),
        ("job descriptor", &job.descriptor),
        ("job extended descriptor", &job.extended_descriptor),
        ("job state", &job.state),
    ];
    for (field, text) in fields {
        check_text(field, text)?;
    }
    job.tags
        .iter()
        .try_for_each(|tag| check_text("job tag", tag))
}

/// Refuses a batch with text the store cannot keep.
pub(crate) fn check_events(events: &[NewEvent]) -> Result<(), StoreError> {
    for event in events {
        check_text("event name", &event.name)?;
        let optional = [
            ("event test name", &event.test),
            ("event step label", &event.step),
            ("event target", &event.target),
            ("event payload", &event.payload),
        ];
        for (field, text) in optional {
            if let Some(text) = text {
                check_text(field, text)?;
            }
        }
    }
    Ok(())
}

/// Refuses a state change with text the store cannot keep (or compare).
pub(crate) fn check_states(from: Option<&str>, to: &str) -> Result<(), StoreError> {
    if let Some(from) = from {
        check_text("expected job state", from)?;
    }
    check_text("job state", to)
}

fn check_text(field: &'static str, text: &str) -> Result<(), StoreError> {
    if text.as_bytes().contains(&0) {
        return Err(StoreError::NulInText { field });
    }
    Ok(())
}
