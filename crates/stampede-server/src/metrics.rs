//! `GET /metrics`: what a Prometheus scrape sees, in the OpenMetrics text format.
//!
//! - `stampede_jobs{project, state}`: the jobs of the scraping token's project this server
//!   owns, by state, counted in the store at each scrape (servers sharing a PostgreSQL store
//!   each count their own, so the sum over servers is right). A token sees its own project
//!   only, as everywhere else in the API; scrape with one token per project to see several;
//! - `stampede_http_requests_total{route, status}`: requests answered, by route template
//!   (`/v1/jobs/{id}`; `unmatched` for no route, to keep the label set small);
//! - `stampede_http_request_duration_seconds{route}`: how long until the response head was
//!   ready (a live event stream counts until it starts, not until it ends).
//!
//! The HTTP metrics are server-wide: they carry route templates and statuses, never a
//! project, a job or a name, and they are what an operator watches the server itself by.
//!
//! The metric families live in the server's [`State`], not in a global; each scrape
//! encodes them with that scrape's own job counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{MatchedPath, Request, State as Extract};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use stampede_api::job::JobState;
use stampede_store::JobQuery;

use crate::State;
use crate::auth::Project;
use crate::error::ApiError;

/// The content type of the OpenMetrics text format, which Prometheus asks for first.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request duration buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many job records are read from the store at once while counting.
const COUNT_PAGE: u32 = 1000;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    project: String,
    state: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's HTTP metrics (families share their values when cloned).
pub(crate) struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
        }
    }

    /// A registry of the HTTP metrics and `jobs`, for one scrape.
    fn registry(&self, jobs: Family<JobLabels, Gauge>) -> Registry {
        let mut registry = Registry::default();
        registry.register(
            "stampede_http_requests",
            "HTTP requests answered, by route and status",
            self.requests.clone(),
        );
        registry.register(
            "stampede_http_request_duration_seconds",
            "Seconds until the response head was ready, by route",
            self.durations.clone(),
        );
        registry.register(
            "stampede_jobs",
            "Jobs of this project this server owns, by state",
            jobs,
        );
        registry
    }
}

/// Counts and times every request (the outermost layer, so 401s, 404s and 503s count too).
pub(crate) async fn record(
    Extract(state): Extract<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .durations
        .get_or_create(&RouteLabels { route })
        .observe(seconds);
    response
}

pub(crate) async fn scrape(
    Extract(state): Extract<Arc<State>>,
    Extension(Project(project)): Extension<Project>,
) -> Result<Response, ApiError> {
    let counts = count_jobs(&state, &project).await?;
    let jobs = Family::<JobLabels, Gauge>::default();
    for job_state in JobState::ALL {
        let count = counts.get(&job_state).copied().unwrap_or(0);
        jobs.get_or_create(&JobLabels {
            project: project.clone(),
            state: job_state.name(),
        })
        .set(count);
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry(jobs))
        .map_err(|e| ApiError::internal(format!("cannot write the metrics: {e}")))?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text).into_response())
}

/// This server's jobs of `project` by state; a state the store holds but this build does
/// not know counts as `unknown`.
async fn count_jobs(state: &State, project: &str) -> Result<HashMap<JobState, i64>, ApiError> {
    let mut counts = HashMap::new();
    let mut after_id = None;
    loop {
        let jobs = state
            .store
            .list_jobs(&JobQuery {
                server_id: Some(state.server_id.clone()),
                project: Some(project.to_string()),
                after_id,
                limit: COUNT_PAGE,
                ..JobQuery::default()
            })
            .await?;
        for job in &jobs {
            let job_state = JobState::from_name(&job.state).unwrap_or(JobState::Unknown);
            *counts.entry(job_state).or_insert(0) += 1;
        }
        if jobs.len() < COUNT_PAGE as usize {
            return Ok(counts);
        }
        after_id = jobs.last().map(|j| j.id);
    }
}
