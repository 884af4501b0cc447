//! A server per test over a fresh store: an SQLite file in a temporary directory, or a
//! PostgreSQL schema created for the test and dropped after the server shut down.
//!
//! PostgreSQL tests connect to `STAMPEDE_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), as the store's own tests do. Without it they
//! print a notice and check nothing, or fail when `CI` is set.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use serde_json::Value;
use stampede_server::{Config, HttpLimits, LoginLimits, Server, create_token};
use stampede_store::EventStore;
use stampede_store::pg_schema::TestStore;

use super::{Reply, call};

/// The stores every server test runs against (SQLite and PostgreSQL).
pub(crate) use stampede_store::pg_schema::TestBackend as Backend;

/// Two `#[tokio::test]`s for each listed test body (an `async fn` taking `&Fixture` or
/// `&mut Fixture`): `sqlite::<test>` and `postgres::<test>`, in the module that lists them.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        on_every_backend!(@backend sqlite Sqlite $($test)*);
        on_every_backend!(@backend postgres Postgres $($test)*);
    };
    (@backend $module:ident $backend:ident $($test:ident)*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::fixture::run($crate::fixture::Backend::$backend, async |f| {
                        super::$test(f).await
                    })
                    .await;
                }
            )*
        }
    };
}
pub(crate) use on_every_backend;

/// A running server, its store, and a token of the `default` project.
pub(crate) struct Fixture {
    pub(crate) store: Arc<dyn EventStore>,
    /// `None` once a test shut it down (it may start another).
    pub(crate) server: Option<Server>,
    pub(crate) token: String,
    /// Opens the same store again: the SQLite file, or the PostgreSQL schema.
    pub(crate) url: String,
    /// The store's file or schema, removed after the server shut down.
    storage: TestStore,
}

/// Runs `test` against a server over a fresh store of `backend`, then shuts the server down
/// and removes the store, even when the test failed.
pub(crate) async fn run(backend: Backend, test: impl AsyncFnOnce(&mut Fixture)) {
    let Some(mut fixture) = Fixture::new(backend).await else {
        return;
    };
    let outcome = AssertUnwindSafe(test(&mut fixture)).catch_unwind().await;
    fixture.finish().await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Starts a server over `store` on a loopback port.
pub(crate) async fn start(store: &Arc<dyn EventStore>) -> Server {
    start_on(store, stampede_core::SystemClock::shared()).await
}

/// Starts a server over `store` on a loopback port, on `clock`.
pub(crate) async fn start_on(
    store: &Arc<dyn EventStore>,
    clock: Arc<dyn stampede_core::Clock>,
) -> Server {
    start_with(store, clock, HttpLimits::default(), LoginLimits::default()).await
}

/// Starts a server over `store` on a loopback port, on `clock`, with these limits.
pub(crate) async fn start_with(
    store: &Arc<dyn EventStore>,
    clock: Arc<dyn stampede_core::Clock>,
    http: HttpLimits,
    login: LoginLimits,
) -> Server {
    Server::start(
        Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            server_id: "test-server".into(),
            request_timeout: Duration::from_secs(10),
            instance_tag: None,
            registry: stampede_job::Registry::new()
                .with(stampede_job::steps::Echo)
                .with(stampede_job::steps::Sleep),
            clock,
            policy: stampede_job::policy::Policy::default(),
            jobs_dir: Some(
                std::env::temp_dir().join(format!("stampede-test-jobs-{}", std::process::id())),
            ),
            http,
            login,
        },
        store.clone(),
    )
    .await
    .unwrap()
}

impl Fixture {
    /// `None` when `backend` is PostgreSQL and no server was given (outside CI).
    async fn new(backend: Backend) -> Option<Fixture> {
        let storage = TestStore::open(backend, "server", "s_server_it").await?;
        let store = storage.store.clone();
        let token = create_token(&store, "tests", "default").await.unwrap();
        let server = start(&store).await;
        Some(Fixture {
            store,
            server: Some(server),
            token,
            url: storage.url.clone(),
            storage,
        })
    }

    /// Shuts the server down, which waits for its job threads, and only then drops the
    /// store: a job still writing would otherwise fail on a dropped schema.
    async fn finish(self) {
        let Fixture {
            store,
            server,
            storage,
            ..
        } = self;
        if let Some(server) = server {
            server.shutdown().await;
        }
        drop(store);
        storage.remove().await;
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        call(self.addr(), "GET", path, Some(&self.token), b"", &[]).await
    }

    pub(crate) async fn post(&self, path: &str, body: &str) -> Reply {
        call(
            self.addr(),
            "POST",
            path,
            Some(&self.token),
            body.as_bytes(),
            &[],
        )
        .await
    }

    /// A request with this fixture's token.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        call(
            self.addr(),
            method,
            path,
            Some(&self.token),
            body.as_bytes(),
            headers,
        )
        .await
    }

    /// Submits `descriptor` and returns the new job's id.
    pub(crate) async fn submit(&self, descriptor: &str) -> u64 {
        let created = self.post("/v1/jobs", descriptor).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["job_id"].as_u64().unwrap()
    }

    /// The sequence numbers of the job's events, from the events endpoint.
    pub(crate) async fn seqs(&self, id: u64) -> Vec<u64> {
        let page = self.get(&format!("/v1/jobs/{id}/events")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    }

    /// Polls the job's status until its state is `state`.
    pub(crate) async fn wait_for(&self, id: u64, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            if reply.body["state"] == state {
                return reply.body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never became {state}: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
