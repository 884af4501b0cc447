//! A fresh store per test: memory, an SQLite file in a temporary directory, or a PostgreSQL
//! schema created for the test and dropped after it.

use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::Arc;

use futures_util::FutureExt as _;
use stampede_store::EventStore;
use stampede_store::pg_schema::TestStore;

pub(crate) use stampede_store::pg_schema::TestBackend as Backend;
pub(crate) use stampede_store::pg_schema::{drop_schema, with_search_path};

/// The PostgreSQL URL, or `None` (see `stampede_store::pg_schema::postgres_url`).
pub(crate) fn postgres_url() -> Option<String> {
    stampede_store::pg_schema::postgres_url("store")
}

/// A fresh schema for one store test.
pub(crate) async fn create_schema(url: &str) -> String {
    stampede_store::pg_schema::create_schema(url, "s_it").await
}

/// Runs `behaviour` on a fresh store of `backend` (and its URL), cleaning up even when it
/// fails.
pub(crate) async fn run(backend: Backend, behaviour: impl AsyncFnOnce(&Arc<dyn EventStore>, &str)) {
    let Some(fixture) = TestStore::open(backend, "store", "s_it").await else {
        return;
    };
    let outcome = AssertUnwindSafe(behaviour(&fixture.store, &fixture.url))
        .catch_unwind()
        .await;
    fixture.remove().await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}
