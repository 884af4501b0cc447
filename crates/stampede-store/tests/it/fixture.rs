//! A fresh store per test: memory, an SQLite file in a temporary directory, or a PostgreSQL
//! schema created for the test and dropped after it.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::FutureExt as _;
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection};
use stampede_store::EventStore;
use tempfile::TempDir;

/// Where PostgreSQL tests connect, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub(crate) const POSTGRES_URL_VAR: &str = "STAMPEDE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// A fresh store and what it needs kept alive or cleaned up.
struct Fixture {
    store: Arc<dyn EventStore>,
    url: String,
    _dir: Option<TempDir>,
    /// The PostgreSQL server URL and the schema to drop.
    schema: Option<(String, String)>,
}

/// The PostgreSQL URL, or `None` after saying (once per process) that those tests do
/// nothing. Under `CI` a missing URL fails the test instead.
pub(crate) fn postgres_url() -> Option<String> {
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
            "NOTICE: {POSTGRES_URL_VAR} is not set: the PostgreSQL store tests check nothing. \
             Set it (e.g. postgres://postgres@127.0.0.1:5432/test) to run them."
        );
    });
    None
}

/// `url` with its search path set to `schema`.
pub(crate) fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Creates a schema no other test uses and returns its name.
pub(crate) async fn create_schema(url: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let schema = format!(
        "s_it_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    admin
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("CREATE SCHEMA");
    admin.close().await.expect("closing the admin connection");
    schema
}

pub(crate) async fn drop_schema(url: &str, schema: &str) {
    let mut admin = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    admin
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .expect("DROP SCHEMA");
    admin.close().await.expect("closing the admin connection");
}

impl Fixture {
    async fn new(backend: Backend) -> Option<Self> {
        let (url, dir, schema) = match backend {
            Backend::Memory => ("memory:".to_owned(), None, None),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let server = postgres_url()?;
                let schema = create_schema(&server).await;
                (
                    with_search_path(&server, &schema),
                    None,
                    Some((server, schema)),
                )
            }
        };
        let store = stampede_store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        Some(Self {
            store,
            url,
            _dir: dir,
            schema,
        })
    }

    async fn finish(self) {
        drop(self.store);
        if let Some((server, schema)) = &self.schema {
            drop_schema(server, schema).await;
        }
    }
}

/// Runs `behaviour` on a fresh store of `backend` (and its URL), cleaning up even when it
/// fails.
pub(crate) async fn run(backend: Backend, behaviour: impl AsyncFnOnce(&Arc<dyn EventStore>, &str)) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    let outcome = AssertUnwindSafe(behaviour(&fixture.store, &fixture.url))
        .catch_unwind()
        .await;
    fixture.finish().await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}
