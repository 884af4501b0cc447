//! Stores for tests (behind the `conformance` feature): [`TestStore`] opens a fresh one of
//! any backend; for PostgreSQL each test gets a fresh schema, reached through the URL's
//! search path, and drops it after.
//!
//! The server's URL comes from [`POSTGRES_URL_VAR`]. When it is unset, [`postgres_url`] says
//! so once per process and returns `None` (the test checks nothing); under `CI` it fails the
//! test instead, so that CI never skips PostgreSQL silently.

use std::io::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection};

/// Where PostgreSQL tests connect, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "STAMPEDE_TEST_POSTGRES_URL";

/// The PostgreSQL URL, or `None` after saying (once per process) that the tests of `what`
/// ("store", "server") check nothing. Under `CI` a missing URL panics instead.
pub fn postgres_url(what: &str) -> Option<String> {
    if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{POSTGRES_URL_VAR} is not set, and CI must run the PostgreSQL tests: set it, e.g. \
         {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test"
    );
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        // Written to stderr directly so the test harness does not swallow it.
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: {POSTGRES_URL_VAR} is not set: the PostgreSQL {what} tests check nothing. \
             Set it (e.g. postgres://postgres@127.0.0.1:5432/test) to run them."
        );
    });
    None
}

/// `url` with its search path set to `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Creates a schema no other test uses (its name starts with `prefix`) and returns its name.
pub async fn create_schema(url: &str, prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let schema = format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    admin(url, &format!("CREATE SCHEMA {schema}")).await;
    schema
}

/// Drops a schema made by [`create_schema`], with everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    admin(url, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

/// Runs one statement on a connection of its own.
async fn admin(url: &str, statement: &str) {
    let mut connection = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    connection
        .execute(AssertSqlSafe(statement.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    connection
        .close()
        .await
        .expect("closing the admin connection");
}

/// The backends a test store can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// In memory.
    Memory,
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema in the PostgreSQL server of [`POSTGRES_URL_VAR`].
    Postgres,
}

/// A fresh store for one test, and what it takes to remove it afterwards.
pub struct TestStore {
    /// The store.
    pub store: std::sync::Arc<dyn crate::EventStore>,
    /// Opens the same store again (the SQLite file, the PostgreSQL schema).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL server URL and the schema to drop.
    schema: Option<(String, String)>,
}

impl TestStore {
    /// A fresh store of `backend`; `None` for PostgreSQL when no server was given outside
    /// CI (after the notice naming the tests of `what`). Schemas are named `prefix_…`.
    pub async fn open(backend: TestBackend, what: &str, prefix: &str) -> Option<TestStore> {
        let (url, dir, schema) = match backend {
            TestBackend::Memory => ("memory:".to_owned(), None, None),
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                (url, Some(dir), None)
            }
            TestBackend::Postgres => {
                let server = postgres_url(what)?;
                let schema = create_schema(&server, prefix).await;
                let url = with_search_path(&server, &schema);
                (url, None, Some((server, schema)))
            }
        };
        let store = crate::open(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        Some(TestStore {
            store,
            url,
            _dir: dir,
            schema,
        })
    }

    /// Drops the store, then its schema or file. Whoever else holds the store must have let
    /// go of it (or stopped writing) first.
    pub async fn remove(self) {
        drop(self.store);
        if let Some((server, schema)) = &self.schema {
            drop_schema(server, schema).await;
        }
    }
}
