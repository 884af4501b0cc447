//! The [`EventStore`] trait: the one interface the job runner and the server use to keep jobs
//! and their events, whatever database is behind it.
//!
//! The trait is object safe and its futures are `Send`, so it is used as
//! `Arc<dyn EventStore>` from any tokio task. Besides jobs and events it keeps what the job
//! server needs to share between its instances: API tokens and idempotency keys. Checks that
//! every backend must make the same way (text they cannot keep) live here too.

use futures_util::future::BoxFuture;

use crate::error::StoreError;
use crate::types::{
    Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, NewToken, NewUser, Seq,
    TokenId, TokenRecord, UserId, UserRecord,
};

/// Keeps jobs and their append-only events. Events are the truth: job status is rebuilt
/// from them; the `state` column is kept for listing and for compare-and-set transitions.
///
/// Every write is durable when its future resolves: a later read, from this handle or from
/// another one opened on the same URL (in this process or another), sees it.
pub trait EventStore: Send + Sync + 'static {
    /// Stores a new job and returns its id (the first is 1, then increasing).
    fn create_job(&self, job: NewJob) -> BoxFuture<'_, Result<JobId, StoreError>>;

    /// Stores a new job unless one was already created with the idempotency key `key` in
    /// `job.project`. Returns the new job's id and `true`, or the earlier job's id and `false`
    /// (storing nothing, whatever `job` holds). Atomic: of concurrent calls with the same key
    /// and project, exactly one creates a job. Keys are
    /// never forgotten, like the jobs they name.
    fn create_job_once<'a>(
        &'a self,
        key: &'a str,
        job: NewJob,
    ) -> BoxFuture<'a, Result<(JobId, bool), StoreError>>;

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

    /// Appends `event` and sets its job's state to `state`, both or neither: the state
    /// column never disagrees with the state events, whenever the process dies (two writes
    /// left jobs `unknown` beside a `JobStateStarted` event). Returns the event's sequence
    /// number; [`StoreError::NotFound`] for a missing job.
    fn append_state<'a>(
        &'a self,
        event: &'a NewEvent,
        state: &'a str,
    ) -> BoxFuture<'a, Result<Seq, StoreError>>;

    /// The events matching `query`, by sequence number ascending. A job without events (or
    /// without a record) has none.
    fn events<'a>(&'a self, query: &'a EventQuery)
    -> BoxFuture<'a, Result<Vec<Event>, StoreError>>;

    /// Stores a new API token and returns its id (the first is 1, then increasing).
    /// [`StoreError::DuplicateToken`] when a token that is not revoked has the same name, or
    /// any token the same hash; then nothing is written.
    fn create_token(&self, token: NewToken) -> BoxFuture<'_, Result<TokenId, StoreError>>;

    /// The token whose secret has the hash `hash`, revoked or not (the caller checks
    /// [`TokenRecord::revoked_at_us`]), or `None`.
    fn token_by_hash<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>>;

    /// Every token, revoked ones included, by id ascending.
    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>>;

    /// Revokes the token `id` as of `at_us` (microseconds since the Unix epoch) and returns
    /// `true`; `false` when there is no such token or it is already revoked (which keeps
    /// its first revocation time).
    fn revoke_token(&self, id: TokenId, at_us: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Stores a new user and returns its id (the first is 1, then increasing; a refused user
    /// may use one up).
    /// [`StoreError::DuplicateUser`] when a user has the same name; then nothing is written.
    fn create_user(&self, user: NewUser) -> BoxFuture<'_, Result<UserId, StoreError>>;

    /// The user named `name`, or `None`.
    fn user_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>>;

    /// Every user, by id ascending.
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>>;

    /// Removes the user named `name` and revokes, as of `at_us`, every token issued to it
    /// that is not revoked yet, both or neither. Returns how many tokens it revoked, or
    /// `None` when there is no such user (then nothing changes).
    fn remove_user<'a>(
        &'a self,
        name: &'a str,
        at_us: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
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
        ("job project", &job.project),
    ];
    for (field, text) in fields {
        check_text(field, text)?;
    }
    job.tags
        .iter()
        .try_for_each(|tag| check_text("job tag", tag))
}

/// Refuses an idempotent job creation with text the store cannot keep.
pub(crate) fn check_job_once(key: &str, job: &NewJob) -> Result<(), StoreError> {
    check_text("idempotency key", key)?;
    check_job(job)
}

/// Refuses a token with text the store cannot keep.
pub(crate) fn check_token(token: &NewToken) -> Result<(), StoreError> {
    check_text("token name", &token.name)?;
    check_text("token project", &token.project)?;
    check_text("token hash", &token.hash)?;
    token
        .user_name
        .as_deref()
        .map_or(Ok(()), |user| check_text("token user name", user))
}

/// Refuses a user with text the store cannot keep.
pub(crate) fn check_user(user: &NewUser) -> Result<(), StoreError> {
    check_text("user name", &user.name)?;
    check_text("user project", &user.project)?;
    check_text("user password hash", &user.password_hash)
}

/// Whether `name` could be stored at all (one with a NUL cannot, so it names no user).
pub(crate) fn storable_name(name: &str) -> bool {
    check_text("user name", name).is_ok()
}

/// Whether `hash` could be stored at all: one with a NUL cannot, so it matches no token
/// (and PostgreSQL is not asked, as it would refuse the text).
pub(crate) fn storable_hash(hash: &str) -> bool {
    check_text("token hash", hash).is_ok()
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
