//! Opening the SQL stores: connection options, pools and the embedded migrations.
//!
//! The schema differs between the databases only in how ids are generated (SQLite rowids,
//! PostgreSQL identity columns), which no portable DDL expresses, hence two migration
//! directories kept in step by hand.

use std::path::Path;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::{POSTGRES, SQLITE, SqlStore};
use crate::error::{BoxError, StoreError};
use crate::location::redact;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an SQLite writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening or borrowing a connection may take before the store gives up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent SQLite readers (WAL readers do not block the writer or each other).
const SQLITE_READERS: u32 = 4;

/// Connections to PostgreSQL, shared by reads and writes.
const POSTGRES_CONNECTIONS: u32 = 8;

/// Opens (creating if missing) the SQLite file at `path` in WAL mode and brings its schema up
/// to date. Commits are synchronous (`synchronous = FULL`): an acknowledged write survives
/// a power cut, not only a crash of the process.
pub(crate) async fn open_sqlite(url: &str, path: &Path) -> Result<SqlStore<Sqlite>, StoreError> {
    let connect_failed = |source: sqlx::Error| StoreError::Connect {
        url: redact(url),
        hint: "check that the directory exists and that this user may write there",
        source: source.into(),
    };
    create_private(path).map_err(|source| StoreError::Connect {
        url: redact(url),
        hint: "check that the directory exists and that this user may write there",
        source: source.into(),
    })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Full);
    // The writer sets WAL (it is stored in the file); readers open after it.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal))
        .await
        .map_err(connect_failed)?;
    SQLITE_MIGRATIONS
        .run(&write)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact(url),
            source: source.into(),
        })?;
    let read = SqlitePoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(connect_failed)?;
    Ok(SqlStore {
        write,
        read,
        dialect: &SQLITE,
    })
}

/// Creates the SQLite file, if it is missing, readable and writable by its owner only: it
/// holds every job's descriptor and the token hashes. SQLite gives its `-wal` and `-shm`
/// files the same permissions. An existing file is left as its owner set it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Connects to the PostgreSQL database at `url` and brings its schema up to date. The
/// tables go to the first schema of the connection's `search_path`, so one database can hold
/// several stores (`?options=-c%20search_path%3Dmy_schema`).
pub(crate) async fn open_postgres(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options: PgConnectOptions = url.parse().map_err(|error: sqlx::Error| StoreError::Url {
        url: redact(url),
        problem: error.to_string(),
    })?;
    // One direct connection first: it fails at once when the server is down (a pool would
    // retry until its acquire timeout) and then runs the migrations.
    let connect_failed = |source: BoxError| StoreError::Connect {
        url: redact(url),
        hint: "check that PostgreSQL is running there and that the URL's user, host, port \
               and database are right",
        source,
    };
    let mut first = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| connect_failed(format!("no answer within {ACQUIRE_TIMEOUT:?}").into()))?
        .map_err(|source| connect_failed(source.into()))?;
    POSTGRES_MIGRATIONS
        .run(&mut first)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact(url),
            source: source.into(),
        })?;
    // The migrations are in; a failed goodbye changes nothing.
    let _ = first.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options);
    Ok(SqlStore {
        write: pool.clone(),
        read: pool,
        dialect: &POSTGRES,
    })
}
