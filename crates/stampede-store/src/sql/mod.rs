//! The SQL stores: SQLite (the embedded default) and PostgreSQL, with one body of code.
//!
//! Both run the same SQL text (`statement.rs`) through sqlx's native drivers rather than its
//! `Any` driver: native pools take typed connection options (an SQLite file path need not
//! survive URL escaping, WAL and the busy timeout are options, not PRAGMA strings), rows skip
//! `Any`'s per-value conversion, each database gets its fastest batch insert
//! (`insert.rs`) and event read (`pages.rs` for SQLite), and no global driver registry is
//! needed. The price is that each operation is compiled once per database: the `sql_store!`
//! macro stamps the same methods onto `SqlStore<Sqlite>` and `SqlStore<Postgres>`. Where the
//! databases differ, a [`Dialect`] says how.
//!
//! Tokens live in `tokens.rs`, stamped the same way by `sql_tokens!`; users in `users.rs`.
//!
//! Ordering: writes to `events` (and to `jobs` on creation) are serialized, so sequence
//! numbers become visible in the order they are assigned. SQLite has one writer anyway (and
//! the store writes through one connection); PostgreSQL takes a table lock per write
//! transaction, which readers do not wait for. Without it, a reader following a job with
//! `after_seq` skipped events whose transaction committed after a later one's
//! (`conformance::concurrent_appenders` catches that).

mod connect;
mod insert;
mod pages;
mod statement;
mod tokens;
mod users;

use std::collections::HashSet;

use futures_util::TryStreamExt as _;
use futures_util::future::BoxFuture;
use sqlx::postgres::Postgres;
use sqlx::query::Query;
use sqlx::sqlite::Sqlite;
use sqlx::{AssertSqlSafe, Database, Encode, Pool, Row, Type};

pub(crate) use connect::{open_postgres, open_sqlite};
use insert::EventInserts;
use pages::{EVENTS_PER_PAGE, PageParser};
use statement::{Arg, Placeholders, Statement, TAG_COLUMNS, db_id};

use crate::error::StoreError;
use crate::store::{EventStore, check_events, check_job, check_job_once, check_states};
use crate::types::{
    Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, NewToken, NewUser, Seq,
    TokenId, TokenRecord, UserId, UserRecord,
};

/// Caps the rows of one multi-row INSERT of tags below the bind-parameter limit.
const MAX_ROWS_PER_INSERT: usize = 1000;

/// What differs between the SQL databases.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Starts a write transaction.
    begin_write: &'static str,
    /// Run first in a transaction that creates a job, so job ids become visible in order.
    lock_jobs: Option<&'static str>,
    /// Run first in a transaction that appends events, so sequence numbers become visible in
    /// order.
    lock_events: Option<&'static str>,
    /// Run first in a transaction that creates a token, so that its check for clashing
    /// tokens still holds when it inserts.
    lock_tokens: Option<&'static str>,
    /// The most parameters one statement may bind.
    max_binds: usize,
    placeholders: Placeholders,
    /// How `events` reads.
    event_reads: EventReads,
}

/// How a store reads events back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventReads {
    /// One result row per event (PostgreSQL streams them cheaply).
    Rows,
    /// Pages of events as JSON text built by the database (SQLite: see `pages.rs`).
    JsonPages,
}

impl Dialect {
    /// Rows of `columns` bound values that fit in one statement.
    fn rows_per_statement(&self, columns: usize) -> usize {
        (self.max_binds / columns).min(MAX_ROWS_PER_INSERT)
    }
}

/// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so a transaction never has to
/// upgrade a read lock (which fails at once with `SQLITE_BUSY` instead of waiting).
/// SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
pub(crate) const SQLITE: Dialect = Dialect {
    begin_write: "BEGIN IMMEDIATE",
    lock_jobs: None,
    lock_events: None,
    lock_tokens: None,
    max_binds: 32_766,
    placeholders: Placeholders::InOrder,
    event_reads: EventReads::JsonPages,
};

/// PostgreSQL: the wire protocol counts parameters in 16 bits. `SHARE ROW EXCLUSIVE` on
/// `jobs` queues job creations behind each other (and state changes behind them, briefly)
/// but not reads; `EXCLUSIVE` on `events` queues appends and lets plain reads through;
/// `SHARE ROW EXCLUSIVE` on `tokens` queues token creations (rare) behind each other.
pub(crate) const POSTGRES: Dialect = Dialect {
    begin_write: "BEGIN",
    lock_jobs: Some("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE"),
    lock_events: Some("LOCK TABLE events IN EXCLUSIVE MODE"),
    lock_tokens: Some("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE"),
    max_binds: 65_535,
    placeholders: Placeholders::Numbered,
    event_reads: EventReads::Rows,
};

/// A store in an SQL database.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: Database> {
    /// Writes. For SQLite a pool of one connection: SQLite has a single writer, and waiting
    /// in the pool's queue is fairer and cheaper than retrying on `SQLITE_BUSY`.
    write: Pool<DB>,
    /// Reads (for PostgreSQL the same pool as `write`).
    read: Pool<DB>,
    dialect: &'static Dialect,
}

/// Binds `statement`'s arguments to a query on its text.
fn prepare<DB>(statement: Statement<'_>) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
{
    let mut query = sqlx::query(AssertSqlSafe(statement.sql));
    for arg in statement.args {
        query = match arg {
            Arg::Int(value) => query.bind(value),
            Arg::OptInt(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
            Arg::OptText(value) => query.bind(value),
        };
    }
    query
}

/// An id read from the database: identity columns and rowids start at 1.
fn stored_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or_default()
}

/// Stamps the store's operations onto `SqlStore<$db>`. The bodies are ordinary code: only
/// the database type differs between the expansions.
macro_rules! sql_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn job_from_row(row: &<$db as Database>::Row) -> Result<JobRecord, sqlx::Error> {
                Ok(JobRecord {
                    id: stored_id(row.try_get(0)?),
                    name: row.try_get(1)?,
                    requestor: row.try_get(2)?,
                    server_id: row.try_get(3)?,
                    requested_at_us: row.try_get(4)?,
                    descriptor: row.try_get(5)?,
                    extended_descriptor: row.try_get(6)?,
                    tags: Vec::new(),
                    state: row.try_get(7)?,
                    project: row.try_get(8)?,
                })
            }

            /// Reads an event row. Unchecked: the columns' types are the schema's, and the
            /// per-column type check was a measurable share of reading a million events.
            fn event_from_row(
                row: &<$db as Database>::Row,
                job_id: JobId,
            ) -> Result<Event, sqlx::Error> {
                let run: Option<i64> = row.try_get_unchecked(1)?;
                let attempt: Option<i64> = row.try_get_unchecked(3)?;
                Ok(Event {
                    seq: stored_id(row.try_get_unchecked(0)?),
                    job_id,
                    run: run.and_then(|run| u32::try_from(run).ok()),
                    test: row.try_get_unchecked(2)?,
                    attempt: attempt.and_then(|attempt| u32::try_from(attempt).ok()),
                    step: row.try_get_unchecked(4)?,
                    target: row.try_get_unchecked(5)?,
                    name: row.try_get_unchecked(6)?,
                    payload: row.try_get_unchecked(7)?,
                    emitted_at_us: row.try_get_unchecked(8)?,
                })
            }

            /// Inserts `job` and its tags in `tx` and returns its id, first taking the lock
            /// that makes job ids visible in order.
            async fn insert_job(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                job: &NewJob,
            ) -> Result<i64, sqlx::Error> {
                if let Some(lock) = self.dialect.lock_jobs {
                    sqlx::query(lock).execute(&mut **tx).await?;
                }
                let row = prepare(statement::insert_job(self.dialect.placeholders, job))
                    .fetch_one(&mut **tx)
                    .await?;
                let id: i64 = row.try_get(0)?;
                let per_statement = self.dialect.rows_per_statement(TAG_COLUMNS);
                for (i, tags) in job.tags.chunks(per_statement).enumerate() {
                    let insert = statement::insert_tags(
                        self.dialect.placeholders,
                        id,
                        i * per_statement,
                        tags,
                    );
                    prepare(insert).execute(&mut **tx).await?;
                }
                Ok(id)
            }

            async fn create_job_now(&self, job: NewJob) -> Result<JobId, StoreError> {
                check_job(&job)?;
                let failed = StoreError::query("create a job");
                let mut tx = self
                    .write
                    .begin_with(self.dialect.begin_write)
                    .await
                    .map_err(failed)?;
                let id = self.insert_job(&mut tx, &job).await.map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                Ok(stored_id(id))
            }

            /// Claims the key before creating the job, so that the key's primary key decides
            /// between concurrent calls rather than a read that another call could overtake:
            /// PostgreSQL makes a second claimer of a key wait until the first commits (or
            /// rolls back), then skips (or claims); SQLite runs one writer at a time. The key
            /// is claimed before the jobs lock is taken, so a call waiting for a key holds
            /// nothing the key's holder needs.
            async fn create_job_once_now(
                &self,
                key: &str,
                job: NewJob,
            ) -> Result<(JobId, bool), StoreError> {
                check_job_once(key, &job)?;
                let failed = StoreError::query("create a job once");
                let mut tx = self
                    .write
                    .begin_with(self.dialect.begin_write)
                    .await
                    .map_err(failed)?;
                let claimed = sqlx::query(
                    "INSERT INTO job_keys (project, idempotency_key) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&job.project)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(failed)?
                .rows_affected()
                    > 0;
                if !claimed {
                    // The other claim has committed, so its job id is set.
                    let earlier: Option<i64> = sqlx::query_scalar(
                        "SELECT job_id FROM job_keys WHERE project = $1 AND idempotency_key = $2",
                    )
                    .bind(&job.project)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
                    tx.rollback().await.map_err(failed)?;
                    let earlier = earlier.ok_or_else(|| StoreError::Query {
                        operation: "create a job once",
                        source: "a committed idempotency key has no job".into(),
                    })?;
                    return Ok((stored_id(earlier), false));
                }
                let id = self.insert_job(&mut tx, &job).await.map_err(failed)?;
                sqlx::query(
                    "UPDATE job_keys SET job_id = $1 WHERE project = $2 AND idempotency_key = $3",
                )
                .bind(id)
                .bind(&job.project)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                Ok((stored_id(id), true))
            }

            async fn job_now(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
                let failed = StoreError::query("read a job");
                let Some(id) = db_id(id) else { return Ok(None) };
                let row = prepare(statement::select_job(self.dialect.placeholders, id))
                    .fetch_optional(&self.read)
                    .await
                    .map_err(failed)?;
                let Some(row) = row else { return Ok(None) };
                let mut job = Self::job_from_row(&row).map_err(failed)?;
                job.tags =
                    sqlx::query_scalar("SELECT tag FROM job_tags WHERE job_id = $1 ORDER BY pos")
                        .bind(id)
                        .fetch_all(&self.read)
                        .await
                        .map_err(failed)?;
                Ok(Some(job))
            }

            async fn list_jobs_now(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
                let failed = StoreError::query("list jobs");
                let rows = prepare(statement::select_jobs(self.dialect.placeholders, query))
                    .fetch_all(&self.read)
                    .await
                    .map_err(failed)?;
                let mut jobs = rows
                    .iter()
                    .map(Self::job_from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(failed)?;
                // Tags never change after creation, so reading them separately is consistent.
                let ids: Vec<i64> = jobs.iter().filter_map(|job| db_id(job.id)).collect();
                for ids in ids.chunks(self.dialect.max_binds) {
                    let mut rows = prepare(statement::select_tags(self.dialect.placeholders, ids))
                        .fetch(&self.read);
                    while let Some(row) = rows.try_next().await.map_err(failed)? {
                        let id = stored_id(row.try_get(0).map_err(failed)?);
                        if let Ok(index) = jobs.binary_search_by_key(&id, |job| job.id) {
                            jobs[index].tags.push(row.try_get(1).map_err(failed)?);
                        }
                    }
                }
                Ok(jobs)
            }

            async fn set_state_now(
                &self,
                id: JobId,
                from: Option<&str>,
                to: &str,
            ) -> Result<bool, StoreError> {
                check_states(from, to)?;
                let failed = StoreError::query("change a job's state");
                let Some(db_id) = db_id(id) else {
                    return Err(StoreError::NotFound(id));
                };
                let update = match from {
                    Some(from) => {
                        sqlx::query("UPDATE jobs SET state = $1 WHERE id = $2 AND state = $3")
                            .bind(to)
                            .bind(db_id)
                            .bind(from)
                    }
                    None => sqlx::query("UPDATE jobs SET state = $1 WHERE id = $2")
                        .bind(to)
                        .bind(db_id),
                };
                if update
                    .execute(&self.write)
                    .await
                    .map_err(failed)?
                    .rows_affected()
                    > 0
                {
                    return Ok(true);
                }
                if self.job_exists(db_id).await? {
                    Ok(false)
                } else {
                    Err(StoreError::NotFound(id))
                }
            }

            async fn append_now(&self, events: &[NewEvent]) -> Result<Vec<Seq>, StoreError> {
                check_events(events)?;
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                let failed = StoreError::query("append events");
                let mut tx = self.begin_append("append events").await?;
                // Checked here rather than by a foreign key (which cost PostgreSQL a third of
                // its append rate): jobs are never deleted, so a job seen is a job kept.
                if let Some(missing) = self.missing_job(&mut tx, events).await? {
                    tx.rollback().await.map_err(failed)?;
                    return Err(StoreError::NotFound(missing));
                }
                let mut seqs = Vec::with_capacity(events.len());
                for chunk in events.chunks(<$db as EventInserts>::EVENTS_PER_STATEMENT) {
                    let first = seqs.len();
                    let rows = <$db as EventInserts>::insert_events(chunk)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(failed)?;
                    for row in rows {
                        seqs.push(stored_id(row.try_get(0).map_err(failed)?));
                    }
                    // RETURNING promises no order, but one statement takes its sequence
                    // numbers in row order.
                    seqs[first..].sort_unstable();
                }
                tx.commit().await.map_err(failed)?;
                Ok(seqs)
            }

            /// A write transaction that appends events, the dialect's event lock taken
            /// (so that sequence numbers become visible in order).
            async fn begin_append(
                &self,
                operation: &'static str,
            ) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                let failed = StoreError::query(operation);
                let mut tx = self
                    .write
                    .begin_with(self.dialect.begin_write)
                    .await
                    .map_err(failed)?;
                if let Some(lock) = self.dialect.lock_events {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(failed)?;
                }
                Ok(tx)
            }

            async fn append_state_now(
                &self,
                event: &NewEvent,
                state: &str,
            ) -> Result<Seq, StoreError> {
                check_events(std::slice::from_ref(event))?;
                check_states(None, state)?;
                let failed = StoreError::query("append a state event");
                let Some(db_job) = db_id(event.job_id) else {
                    return Err(StoreError::NotFound(event.job_id));
                };
                let mut tx = self.begin_append("append a state event").await?;
                // The update finds the job or not: a missing job writes nothing.
                let updated = sqlx::query("UPDATE jobs SET state = $1 WHERE id = $2")
                    .bind(state)
                    .bind(db_job)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?
                    .rows_affected();
                if updated == 0 {
                    tx.rollback().await.map_err(failed)?;
                    return Err(StoreError::NotFound(event.job_id));
                }
                let row = <$db as EventInserts>::insert_events(std::slice::from_ref(event))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
                let seq = stored_id(row.try_get(0).map_err(failed)?);
                tx.commit().await.map_err(failed)?;
                Ok(seq)
            }

            /// The first job of `events`, in their order, that does not exist.
            async fn missing_job(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                events: &[NewEvent],
            ) -> Result<Option<JobId>, StoreError> {
                let failed = StoreError::query("look jobs up");
                let mut seen = HashSet::new();
                let distinct: Vec<JobId> = events
                    .iter()
                    .map(|event| event.job_id)
                    .filter(|&id| seen.insert(id))
                    .collect();
                let ids: Vec<i64> = distinct.iter().filter_map(|&id| db_id(id)).collect();
                let mut found = HashSet::with_capacity(ids.len());
                for ids in ids.chunks(self.dialect.max_binds) {
                    let select = statement::select_job_ids(self.dialect.placeholders, ids);
                    for row in prepare(select).fetch_all(&mut **tx).await.map_err(failed)? {
                        found.insert(stored_id(row.try_get(0).map_err(failed)?));
                    }
                }
                Ok(distinct.into_iter().find(|id| !found.contains(id)))
            }

            async fn events_now(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
                let Some(id) = db_id(query.job_id) else {
                    return Ok(Vec::new());
                };
                match self.dialect.event_reads {
                    EventReads::Rows => self.read_event_rows(query, id).await,
                    EventReads::JsonPages => self.read_event_pages(query, id).await,
                }
            }

            async fn read_event_rows(
                &self,
                query: &EventQuery,
                id: i64,
            ) -> Result<Vec<Event>, StoreError> {
                let failed = StoreError::query("read events");
                let capacity = query
                    .limit
                    .map_or(1 << 16, |limit| (limit as usize).min(1 << 16));
                let mut events = Vec::with_capacity(capacity);
                let statement = statement::select_events(self.dialect.placeholders, query, id);
                let mut rows = prepare(statement).fetch(&self.read);
                while let Some(row) = rows.try_next().await.map_err(failed)? {
                    events.push(Self::event_from_row(&row, query.job_id).map_err(failed)?);
                }
                Ok(events)
            }

            /// Reads events as JSON pages (why: `pages.rs`), parsing each on a blocking
            /// thread while the database builds the next.
            async fn read_event_pages(
                &self,
                query: &EventQuery,
                id: i64,
            ) -> Result<Vec<Event>, StoreError> {
                let failed = StoreError::query("read events");
                let mut parser: Option<PageParser> = None;
                let mut after = query
                    .after_seq
                    .map(|after| db_id(after).unwrap_or(i64::MAX));
                let mut remaining = query.limit.map_or(usize::MAX, |limit| limit as usize);
                while remaining > 0 {
                    let page = remaining.min(EVENTS_PER_PAGE);
                    let statement = statement::select_event_page(
                        self.dialect.placeholders,
                        query,
                        id,
                        after,
                        page as i64,
                    );
                    let row = prepare(statement)
                        .fetch_one(&self.read)
                        .await
                        .map_err(failed)?;
                    let json: String = row.try_get(0).map_err(failed)?;
                    let last: Option<i64> = row.try_get(1).map_err(failed)?;
                    let found =
                        usize::try_from(row.try_get::<i64, _>(2).map_err(failed)?).unwrap_or(0);
                    let events = match parser.take() {
                        Some(previous) => previous.finish().await?,
                        None => Vec::new(),
                    };
                    parser = Some(PageParser::start(events, json, query.job_id));
                    if found < page {
                        break;
                    }
                    remaining -= found;
                    after = last;
                }
                let events = match parser {
                    Some(parser) => parser.finish().await?,
                    None => Vec::new(),
                };
                Ok(events)
            }

            async fn job_exists(&self, id: i64) -> Result<bool, StoreError> {
                let found = sqlx::query("SELECT 1 FROM jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(StoreError::query("look a job up"))?;
                Ok(found.is_some())
            }
        }

        impl EventStore for SqlStore<$db> {
            fn create_job(&self, job: NewJob) -> BoxFuture<'_, Result<JobId, StoreError>> {
                Box::pin(self.create_job_now(job))
            }

            fn create_job_once<'a>(
                &'a self,
                key: &'a str,
                job: NewJob,
            ) -> BoxFuture<'a, Result<(JobId, bool), StoreError>> {
                Box::pin(self.create_job_once_now(key, job))
            }

            fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobRecord>, StoreError>> {
                Box::pin(self.job_now(id))
            }

            fn list_jobs<'a>(
                &'a self,
                query: &'a JobQuery,
            ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
                Box::pin(self.list_jobs_now(query))
            }

            fn set_state<'a>(
                &'a self,
                id: JobId,
                from: Option<&'a str>,
                to: &'a str,
            ) -> BoxFuture<'a, Result<bool, StoreError>> {
                Box::pin(self.set_state_now(id, from, to))
            }

            fn append<'a>(
                &'a self,
                events: &'a [NewEvent],
            ) -> BoxFuture<'a, Result<Vec<Seq>, StoreError>> {
                Box::pin(self.append_now(events))
            }

            fn append_state<'a>(
                &'a self,
                event: &'a NewEvent,
                state: &'a str,
            ) -> BoxFuture<'a, Result<Seq, StoreError>> {
                Box::pin(self.append_state_now(event, state))
            }

            fn events<'a>(
                &'a self,
                query: &'a EventQuery,
            ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
                Box::pin(self.events_now(query))
            }

            fn create_token(&self, token: NewToken) -> BoxFuture<'_, Result<TokenId, StoreError>> {
                Box::pin(self.create_token_now(token))
            }

            fn token_by_hash<'a>(
                &'a self,
                hash: &'a str,
            ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
                Box::pin(self.token_by_hash_now(hash))
            }

            fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
                Box::pin(self.list_tokens_now())
            }

            fn revoke_token(
                &self,
                id: TokenId,
                at_us: i64,
            ) -> BoxFuture<'_, Result<bool, StoreError>> {
                Box::pin(self.revoke_token_now(id, at_us))
            }

            fn create_user(&self, user: NewUser) -> BoxFuture<'_, Result<UserId, StoreError>> {
                Box::pin(self.create_user_now(user))
            }

            fn user_by_name<'a>(
                &'a self,
                name: &'a str,
            ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
                Box::pin(self.user_by_name_now(name))
            }

            fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
                Box::pin(self.list_users_now())
            }

            fn remove_user<'a>(
                &'a self,
                name: &'a str,
                at_us: i64,
            ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
                Box::pin(self.remove_user_now(name, at_us))
            }
        }
    };
}

sql_store!(Sqlite);
sql_store!(Postgres);
