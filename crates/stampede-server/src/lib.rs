//! The job server: a JSON REST API under `/v1` over the same job runner `stampede run` uses
//! and the event store.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /healthz` | `ok` (the only call without a token) |
//! | `GET /v1/version` | the server's version and id |
//! | `POST /v1/jobs` | submit a descriptor (YAML or JSON, native or ConTest) as the token's user; `Idempotency-Key` makes a retry safe |
//! | `GET /v1/jobs?state=&tag=&after=&limit=` | list the project's jobs |
//! | `GET /v1/jobs/{id}` | the job's status, rebuilt from its events |
//! | `GET /v1/jobs/{id}/events?after=&limit=` | its events, paged by sequence number |
//! | `GET /v1/jobs/{id}/events/stream?after=` | its events live, as server-sent events (`Last-Event-ID` resumes) |
//! | `POST /v1/jobs/{id}/cancel`, `/pause`, `/resume` | control a job this server runs |
//! | `POST /v1/jobs/{id}/retry` | submit an ended or paused job again, as a new job of the token's user |
//! | `POST /v1/tests` | create a test run executed elsewhere (`stampede run --out cloud`); returns its `reference_id` |
//! | `POST /v1/tests/{ref}/metrics` | its interval snapshots, in order (`first` makes a retry safe) |
//! | `POST /v1/tests/{ref}` | finish it: run status, result status, thresholds |
//! | `POST /v1/tests/{ref}/stop` | stop it (its next push is told), or cancel a job this server runs |
//! | `GET /v1/tests/{ref}` | the run, with its snapshots merged per step and target |
//! | `GET /v1/test-progress/{ref}` | k6's `run_status`, `result_status` and `progress`, for test runs and jobs |
//! | `POST /v1/validate-options` | check a descriptor (`{"options": {...}}`) without submitting it |
//! | `POST /v1/login` | a user's name (`email`) and password for a new token that expires (no token needed; rate-limited, 429 with `Retry-After`) |
//! | `POST /v1/validate-token` | whether a token is valid: `invalid` for unknown, revoked and expired alike (no token needed) |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document of all of the above |
//! | `GET /metrics` | the token's project's jobs by state; HTTP request counts and durations (OpenMetrics text) |
//!
//! Every call but `/healthz`, `login` and `validate-token` needs `Authorization: Token SECRET`; tokens are created with
//! [`create_token`] (the secret is shown once and stored as its SHA-256) or by logging in
//! (they then expire after [`LoginLimits::token_ttl`]) and belong to a project: a token sees
//! only its project's jobs, and the jobs it submits name it (its user, or its name) as their
//! requestor. Errors use k6's envelope with a message that says what to fix.
//!
//! The server protects itself: request heads must arrive within a timeout, the open
//! connections are capped ([`HttpLimits`], `serve.rs`), and logins are rate-limited per
//! address and per user name with password checks on a bounded pool ([`LoginLimits`],
//! `login.rs`).
//!
//! A job is admitted only if its project's grants in the server's policy cover what it
//! needs ([`stampede_job::policy`]; 403 otherwise, naming each need and its grant). Each job
//! runs on a thread of its own (the runner is single-threaded) in a working directory of its
//! own, at most the policy's number at once (the rest wait, queued); on start the server
//! settles every job it left unfinished; [`Server::shutdown`] pauses its running jobs and
//! waits for them.

mod auth;
mod error;
mod jobs;
mod limiter;
mod login;
mod metrics;
mod openapi;
mod serve;
mod slots;
mod stream;
mod testruns;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use stampede_core::Clock;
use stampede_job::Registry;
use stampede_job::access::Processes;
use stampede_job::policy::Policy;
use stampede_store::{EventStore, JobId};
use tokio_util::sync::CancellationToken;

pub use auth::{TokenError, TokenSpec, create_token, create_token_with, hash_secret};
pub use error::ApiError;
pub use limiter::Rate;
pub use login::{LoginLimits, UserError, create_user};
pub use serve::HttpLimits;

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
    /// An internal tag (`_name`) this server adds to every job it creates; it then
    /// recovers only the jobs that carry it (ConTest's instance tag).
    pub instance_tag: Option<String>,
    /// The steps jobs on this server may use.
    pub registry: Registry,
    /// The time: the real clock, or a manual one in tests.
    pub clock: Arc<dyn Clock>,
    /// What each project's jobs may do, how big they may be and how many run at once.
    pub policy: Policy,
    /// Where jobs get their working directories (`job-ID`, made when a job starts and
    /// removed when it ends); default: `stampede-jobs-SERVER_ID` in the system's temporary
    /// directory.
    pub jobs_dir: Option<PathBuf>,
    /// Timeouts and the connection cap.
    pub http: HttpLimits,
    /// Login rate limits and how long login tokens last.
    pub login: LoginLimits,
}

/// What every handler shares.
pub(crate) struct State {
    pub(crate) store: Arc<dyn EventStore>,
    /// The steps jobs may use.
    pub(crate) registry: Registry,
    /// The time events are stamped with and waits are measured in.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) server_id: String,
    /// See [`Config::instance_tag`].
    pub(crate) instance_tag: Option<String>,
    /// Where each test run's metrics pushes have got to.
    pub(crate) pushes: Mutex<HashMap<JobId, Arc<tokio::sync::Mutex<testruns::PushCursor>>>>,
    /// The jobs running on this server, and those queued.
    pub(crate) slots: Mutex<slots::Slots>,
    /// What each project's jobs may do.
    pub(crate) policy: Policy,
    /// How allowed processes start (the policy's, with its user looked up).
    pub(crate) processes: Processes,
    /// See [`Config::jobs_dir`].
    pub(crate) jobs_dir: PathBuf,
    /// Cancelled when the server stops: live event streams end, so that the graceful
    /// shutdown does not wait for them forever.
    pub(crate) stop: CancellationToken,
    /// What `/metrics` reports.
    pub(crate) metrics: metrics::Metrics,
    /// The login limits in force.
    pub(crate) logins: login::Logins,
}

impl State {
    /// The push cursor of test run `id` (a new one the first time).
    pub(crate) fn push_cursor(&self, id: JobId) -> Arc<tokio::sync::Mutex<testruns::PushCursor>> {
        self.pushes
            .lock()
            .expect("the push table is never poisoned")
            .entry(id)
            .or_default()
            .clone()
    }

    /// Drops the push cursor of a finished test run.
    pub(crate) fn forget_push_cursor(&self, id: JobId) {
        self.pushes
            .lock()
            .expect("the push table is never poisoned")
            .remove(&id);
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
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
    /// The instance tag is not an internal tag.
    #[error(
        "instance tag {0:?}: it must start with '_' and hold only letters, digits, '_' and '-'"
    )]
    InstanceTag(String),
    /// The policy names a user that does not exist.
    #[error("the server's policy: {0}")]
    Policy(String),
    /// The store failed while cleaning up after a previous run.
    #[error("cannot recover this server's jobs: {0}")]
    Recover(String),
}

impl Server {
    /// Recovers this server's jobs (zombies fail, paused jobs resume), binds `config.addr`
    /// and serves until [`Server::shutdown`]. Call inside a tokio runtime.
    pub async fn start(config: Config, store: Arc<dyn EventStore>) -> Result<Server, StartError> {
        if let Some(tag) = &config.instance_tag {
            let valid = tag.len() > 1
                && tag.starts_with('_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(StartError::InstanceTag(tag.clone()));
            }
        }
        let processes = config.policy.processes().map_err(StartError::Policy)?;
        let jobs_dir = config.jobs_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("stampede-jobs-{}", config.server_id))
        });
        if let Some(user) = &processes.run_as {
            reachable_by(&jobs_dir, user).map_err(StartError::Policy)?;
        }
        let stop = CancellationToken::new();
        // Jobs run on runtimes of their own; the store's connections must stay on this one.
        let store = stampede_store::on_runtime(store, tokio::runtime::Handle::current());
        let state = Arc::new(State {
            store,
            registry: config.registry.clone(),
            clock: config.clock.clone(),
            server_id: config.server_id.clone(),
            instance_tag: config.instance_tag.clone(),
            pushes: Mutex::new(HashMap::new()),
            slots: Mutex::new(slots::Slots::default()),
            policy: config.policy.clone(),
            processes,
            jobs_dir,
            stop: stop.clone(),
            metrics: metrics::Metrics::new(),
            logins: login::Logins::new(&config.login),
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
        let app = router(state.clone(), config.request_timeout);
        let serving = tokio::spawn(serve::serve(
            listener,
            app,
            config.http.clone(),
            stop.clone(),
        ));
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
        let running = self
            .state
            .slots
            .lock()
            .expect("the job table is never poisoned")
            .drain();
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

/// Makes `dir` (searchable by all, 0711) and checks that `user` can reach it: every folder
/// above it must let others through, or the user's processes could not start in their
/// job's directory.
fn reachable_by(dir: &std::path::Path, user: &stampede_job::access::RunAs) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(|e| format!("cannot make the jobs directory {}: {e}", dir.display()))?;
    for folder in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(folder) else {
            continue;
        };
        let through = meta.mode() & 0o001 != 0
            || (meta.uid() == user.uid && meta.mode() & 0o100 != 0)
            || (meta.gid() == user.gid && meta.mode() & 0o010 != 0);
        if !through {
            return Err(format!(
                "the run_as user {} cannot reach the jobs directory {}: {} does not let others through (chmod o+x it, or choose another --jobs-dir)",
                user.name,
                dir.display(),
                folder.display()
            ));
        }
    }
    Ok(())
}

/// One route: what the router serves, and what the OpenAPI document must describe (a test
/// holds the two to each other).
pub(crate) struct Route {
    /// What `handler` answers; read by the test that compares routes with the document.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    /// Whether it needs a token.
    pub(crate) token: bool,
    handler: MethodRouter<Arc<State>>,
}

fn route<H, T>(method: Method, path: &'static str, token: bool, handler: H) -> Route
where
    H: Handler<T, Arc<State>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route {
        method,
        path,
        token,
        handler: on(filter, handler),
    }
}

/// Every route the server answers.
pub(crate) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/healthz", false, || async { "ok" }),
        route(M::GET, "/metrics", true, metrics::scrape),
        route(M::GET, "/v1/version", true, jobs::version),
        route(M::GET, "/v1/openapi.json", true, openapi::serve),
        route(M::POST, "/v1/jobs", true, jobs::submit),
        route(M::GET, "/v1/jobs", true, jobs::list),
        route(M::GET, "/v1/jobs/{id}", true, jobs::status),
        route(M::GET, "/v1/jobs/{id}/events", true, jobs::events),
        route(M::GET, "/v1/jobs/{id}/events/stream", true, stream::stream),
        route(M::POST, "/v1/jobs/{id}/cancel", true, jobs::cancel),
        route(M::POST, "/v1/jobs/{id}/pause", true, jobs::pause),
        route(M::POST, "/v1/jobs/{id}/resume", true, jobs::resume),
        route(M::POST, "/v1/jobs/{id}/retry", true, jobs::retry),
        route(M::POST, "/v1/tests", true, testruns::create),
        route(M::GET, "/v1/tests/{ref}", true, testruns::get),
        route(M::POST, "/v1/tests/{ref}", true, testruns::finish),
        route(M::POST, "/v1/tests/{ref}/metrics", true, testruns::push),
        route(M::POST, "/v1/tests/{ref}/stop", true, testruns::stop),
        route(M::GET, "/v1/test-progress/{ref}", true, testruns::progress),
        route(
            M::POST,
            "/v1/validate-options",
            true,
            jobs::validate_options,
        ),
        route(M::POST, "/v1/validate-token", false, auth::validate_token),
        route(M::POST, "/v1/login", false, login::login),
    ]
}

fn router(state: Arc<State>, timeout: Duration) -> Router {
    let (open, guarded): (Vec<_>, Vec<_>) = routes().into_iter().partition(|r| !r.token);
    let add = |router: Router<Arc<State>>, route: Route| router.route(route.path, route.handler);
    let guarded = guarded.into_iter().fold(Router::new(), add).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), auth::require_token),
    );
    open.into_iter()
        .fold(Router::new(), add)
        .merge(guarded)
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed(
                "this endpoint does not take this method; /v1/openapi.json lists what each takes",
            )
        })
        .fallback(|| async { ApiError::not_found("no such endpoint; the API is under /v1") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |req, next| {
            error::with_timeout(timeout, req, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .with_state(state)
}
