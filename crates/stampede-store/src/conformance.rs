//! The behaviours every [`EventStore`] must show, one async function each, so that the
//! in-memory, SQLite and PostgreSQL stores are held to exactly the same contract.
//!
//! Each function takes a fresh, empty store and panics with what differed; this crate's
//! `tests/it` runs every one against every backend. A new backend should pass them all.
//! Jobs are covered in `conformance/jobs.rs`, events and durability in
//! `conformance/events.rs`, projects and idempotent job creation in `conformance/projects.rs`,
//! API tokens in `conformance/tokens.rs`, users in `conformance/users.rs`.

mod events;
mod jobs;
mod projects;
mod tokens;
mod users;

pub use events::{
    append_assigns_increasing_seqs, append_is_atomic, concurrent_appenders, events_query,
    large_batches_span_statements, reopen_reads_everything,
};
pub use jobs::{
    append_state_writes_the_event_and_the_column_together, ids_increase, job_round_trip,
    list_filters, set_state_is_compare_and_set, set_state_race_has_one_winner,
    text_with_nul_is_refused,
};
pub use projects::{
    create_job_once_is_idempotent, create_job_once_race_has_one_winner, job_keys_survive_reopen,
    projects_scope_jobs,
};
pub use tokens::{
    duplicate_tokens_are_refused, revoke_token_once, token_round_trip,
    token_text_with_nul_is_refused, tokens_survive_reopen,
};
pub use users::{remove_user_revokes_its_tokens, user_round_trip_and_duplicates};

use crate::{
    DEFAULT_PROJECT, Event, EventQuery, EventStore, JobId, JobRecord, NewEvent, NewJob, Seq,
    StoreError,
};

/// The value of `result`, or a panic naming what the store was asked to do.
pub(super) fn must<T>(result: Result<T, StoreError>, doing: &str) -> T {
    result.unwrap_or_else(|error| panic!("{doing}: {error}"))
}

pub(super) fn new_job(name: &str, state: &str, server_id: &str, tags: &[&str]) -> NewJob {
    NewJob {
        name: name.to_owned(),
        requestor: "conformance".to_owned(),
        server_id: server_id.to_owned(),
        requested_at_us: 1_700_000_000_000_000,
        descriptor: format!("{{\"JobName\":\"{name}\"}}"),
        extended_descriptor: format!("{{\"name\":\"{name}\"}}"),
        tags: tags.iter().map(|&tag| tag.to_owned()).collect(),
        state: state.to_owned(),
        project: DEFAULT_PROJECT.to_owned(),
    }
}

pub(super) fn new_event(job_id: JobId, name: &str, payload: &str) -> NewEvent {
    NewEvent {
        job_id,
        run: Some(1),
        test: Some("test".to_owned()),
        attempt: Some(0),
        step: Some("step".to_owned()),
        target: None,
        name: name.to_owned(),
        payload: Some(payload.to_owned()),
        emitted_at_us: 1_700_000_000_000_000,
    }
}

pub(super) async fn create(store: &dyn EventStore, job: NewJob) -> JobId {
    must(store.create_job(job).await, "create_job")
}

pub(super) async fn all_events(store: &dyn EventStore, job_id: JobId) -> Vec<Event> {
    must(
        store
            .events(&EventQuery {
                job_id,
                ..EventQuery::default()
            })
            .await,
        "events",
    )
}

pub(super) fn ids(jobs: &[JobRecord]) -> Vec<JobId> {
    jobs.iter().map(|job| job.id).collect()
}

pub(super) fn seqs(events: &[Event]) -> Vec<Seq> {
    events.iter().map(|event| event.seq).collect()
}

pub(super) fn assert_increasing(seqs: &[Seq], what: &str) {
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "{what} are not strictly increasing: {seqs:?}"
    );
}
