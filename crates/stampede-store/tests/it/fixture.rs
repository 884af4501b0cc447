//! A fresh store per test: memory, an SQLite file in a temporary directory, or a PostgreSQL
//! schema created for the test and dropped after it.

use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::Arc;

use futures_util::FutureExt as _;
use stampede_store::EventStore;
use tempfile::TempDir;

pub(crate) use stampede_store::pg_schema::{drop_schema, with_search_path};

/// The PostgreSQL URL, or `None` (see `stampede_store::pg_schema::postgres_url`).
pub(crate) fn postgres_url() -> Option<String> {
    stampede_store::pg_schema::postgres_url("store")
}

/// A fresh schema for one store test.
pub(crate) async fn create_schema(url: &str) -> String {
    stampede_store::pg_schema::create_schema(url, "s_it").await
}

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
