//! The job server: a JSON REST API under `/v1` over the same job runner `stampede run` uses
//! and the event store.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /healthz` | `ok` (the only call without a token) |
//! | `GET /v1/version` | the server's version and id |
//! | `POST /v1/jobs` | submit a descriptor (YAML or JSON, native or ConTest); `Idempotency-Key` makes a retry safe |
//! | `GET /v1/jobs?state=&tag=&after=&limit=` | list the project's jobs |
//! | `GET /v1/jobs/{id}` | the job's status, rebuilt from its events |
//! | `GET /v1/jobs/{id}/events?after=&limit=` | its events, paged by sequence number |
//! | `POST /v1/jobs/{id}/cancel`, `/pause`, `/resume` | control a job this server runs |
//!
//! Every call but `/healthz` needs `Authorization: Token SECRET`; tokens are created with
//! [`create_token`] (the secret is shown once and stored as its SHA-256) and belong to a
//! project: a token sees only its project's jobs. Errors use k6's envelope with a message
//! that says what to fix.
//!
//! Each job runs on a thread of its own (the runner is single-threaded); on start the server
//! fails the jobs it left `started` (zombies) and resumes the ones it paused; [`Server::
//! shutdown`] pauses its running jobs and waits for them.

mod auth;
mod error;
mod jobs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use stampede_job::runner::JobControl;
use stampede_store::{EventStore, JobId};
use tokio_util::sync::CancellationToken;

pub use auth::{TokenError, create_token, hash_secret};
pub use error::ApiError;

/// The largest request body accepted (a descriptor).
const MAX_BODY: usize = 1024 * 1024;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks one.
    pub addr: SocketAddr,
    /// This server's id: the jobs it runs carry it.
    pub server_id: String,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
}

/// What every handler shares.
pub(crate) struct State {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) server_id: String,
    /// The jobs running on this server, by id.
    pub(crate) running: Mutex<HashMap<JobId, Running>>,
}

/// A job running on this server.
pub(crate) struct Running {
    pub(crate) control: JobControl,
    pub(crate) thread: std::thread::JoinHandle<()>,
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed while cleaning up after a previous run.
    #[error("cannot recover this server's jobs: {0}")]
    Recover(String),
}

impl Server {
    /// Recovers this server's jobs (zombies fail, paused jobs resume), binds `config.addr`
    /// and serves until [`Server::shutdown`]. Call inside a tokio runtime.
    pub async fn start(config: Config, store: Arc<dyn EventStore>) -> Result<Server, StartError> {
        let state = Arc::new(State {
            store,
            server_id: config.server_id.clone(),
            running: Mutex::new(HashMap::new()),
        });
        jobs::recover(&state).await.map_err(StartError::Recover)?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
        let stop = CancellationToken::new();
        let app = router(state.clone(), config.request_timeout);
        let serving = tokio::spawn({
            let stop = stop.clone();
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }
        });
        Ok(Server {
            addr,
            state,
            stop,
            serving,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, pauses every job it runs and waits for them to record
    /// their pause (ConTest pauses on shutdown).
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.serving.await;
        let running: Vec<Running> = {
            let mut running = self
                .state
                .running
                .lock()
                .expect("the job table is never poisoned");
            running.drain().map(|(_, r)| r).collect()
        };
        for job in &running {
            job.control.pause.cancel();
        }
        let _ = tokio::task::spawn_blocking(move || {
            for job in running {
                let _ = job.thread.join();
            }
        })
        .await;
    }
}

fn router(state: Arc<State>, timeout: Duration) -> Router {
    let api = Router::new()
        .route("/v1/version", get(jobs::version))
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::status))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/pause", post(jobs::pause))
        .route("/v1/jobs/{id}/resume", post(jobs::resume))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such endpoint; the API is under /v1") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |req, next| {
            error::with_timeout(timeout, req, next)
        }))
        .with_state(state)
}
