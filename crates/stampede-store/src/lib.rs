//! The job event store. Events are the truth: every job state change and step event is
//! appended here, and a job's status is rebuilt from its events alone.
//!
//! One trait, [`EventStore`], and three implementations chosen by URL with [`open`]:
//!
//! | URL | backend |
//! |---|---|
//! | `memory:` | in process memory; for tests, gone when the process ends |
//! | `sqlite://PATH` | an SQLite file in WAL mode, created on first use (the embedded default) |
//! | `postgres://USER@HOST:PORT/DB` | PostgreSQL, for several servers sharing one store |
//!
//! A store keeps [jobs](JobRecord) (ids from 1 up) and their append-only [events](Event),
//! each with a sequence number ([`Seq`]) that increases across the whole store and becomes
//! visible in order, so [`EventQuery::after_seq`] is a safe cursor for following a job.
//! Appends are atomic and durable when they return. Payloads and descriptors are opaque
//! JSON text; `stampede-api` owns their meaning.
//!
//! It also keeps what the job servers sharing it must agree on:
//!
//! | what | API |
//! |---|---|
//! | projects: every job belongs to one ([`DEFAULT_PROJECT`] unless it says otherwise) | [`NewJob::project`], [`JobQuery::project`] |
//! | API tokens of a project, kept by the hash of their secret, revoked rather than deleted | [`EventStore::create_token`], [`token_by_hash`](EventStore::token_by_hash), [`list_tokens`](EventStore::list_tokens), [`revoke_token`](EventStore::revoke_token) |
//! | Users who log in with a name and a password, kept by the password's hash | [`EventStore::create_user`], [`user_by_name`](EventStore::user_by_name) |
//! | idempotency keys: one job per key and project, however many times (or at once) it is asked for | [`EventStore::create_job_once`] |
//!
//! ```no_run
//! use stampede_store::{EventQuery, NewEvent, NewJob};
//!
//! # async fn demo() -> Result<(), stampede_store::StoreError> {
//! let store = stampede_store::open("sqlite://stampede.db").await?;
//! let job = store.create_job(NewJob { name: "nightly".into(), state: "started".into(), ..NewJob::default() }).await?;
//! let event = NewEvent { job_id: job, name: "JobStateStarted".into(), ..NewEvent::default() };
//! let seqs = store.append(&[event]).await?;
//! let events = store.events(&EventQuery { job_id: job, ..EventQuery::default() }).await?;
//! assert_eq!(events[0].seq, seqs[0]);
//! # Ok(())
//! # }
//! ```
//!
//! Every backend passes the same behaviour suite, `conformance` (behind the cargo feature of
//! that name), run by this crate's integration tests.

mod error;
mod location;
mod memory;
mod runtime;
mod sql;
mod store;
mod types;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod pg_schema;

use std::sync::Arc;

pub use error::{BoxError, StoreError, TokenClash};
pub use runtime::on_runtime;
pub use store::EventStore;
pub use types::{
    DEFAULT_PROJECT, Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, NewToken,
    NewUser, Seq, TokenId, TokenRecord, UserId, UserRecord,
};

use location::Location;

/// Opens the store at `url` (see the crate docs for the forms), creating an SQLite file if
/// it is missing and bringing an SQL database's schema up to date.
///
/// # Errors
///
/// [`StoreError::Url`] for a URL of another form, [`StoreError::Connect`] when the database
/// cannot be reached or created, [`StoreError::Migrate`] when its schema cannot be prepared.
pub async fn open(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    Ok(match Location::parse(url)? {
        Location::Memory => Arc::new(memory::MemoryStore::new()),
        Location::Sqlite(path) => Arc::new(sql::open_sqlite(url, &path).await?),
        Location::Postgres => Arc::new(sql::open_postgres(url).await?),
    })
}
