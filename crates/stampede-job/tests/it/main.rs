//! The job runner against real stores (memory and SQLite files), real child processes and
//! real sockets: ConTest's samples, the state machine (pause, resume, cancel, timeouts,
//! retries, runs = 0) and the events it leaves.

mod access;
mod clock;
mod contest;
mod descriptor;
mod fuzz;
mod lifecycle;
mod verdicts;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use stampede_api::job::JobStatus;
use stampede_core::{Clock, SystemClock};
use stampede_job::runner::{self, JobControl, JobOutcome};
use stampede_job::{Job, Registry, steps};
use stampede_store::{Event, EventQuery, EventStore};

/// Runs `future` on a current-thread runtime inside a `LocalSet`, as the CLI does.
pub(crate) fn local<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, future)
}

/// The steps these tests use: the job crate's own, and the load and http steps.
pub(crate) fn registry() -> Registry {
    Registry::new()
        .with(stampede_load::Load)
        .with(steps::Exec)
        .with(steps::Sleep)
        .with(stampede_load::Http)
        .with(steps::WaitPort)
        .with(steps::Echo)
        .with(steps::RandEcho)
}

/// The real clock.
pub(crate) fn clock() -> Arc<dyn Clock> {
    SystemClock::shared()
}

/// A native job from YAML text.
pub(crate) fn job(yaml: &str) -> Job {
    Job::parse(yaml, "job.yaml", Path::new("."), &registry()).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) async fn memory() -> Arc<dyn EventStore> {
    stampede_store::open("memory:").await.unwrap()
}

/// Submits and runs `job` to its end.
pub(crate) async fn run(
    store: &Arc<dyn EventStore>,
    job: &Job,
    control: &JobControl,
) -> (u64, JobOutcome, JobStatus) {
    let id = runner::submit(store, &SystemClock, job, "test", "tests", "local")
        .await
        .unwrap();
    let outcome = runner::run_job(store.clone(), clock(), id, job, None, control, &())
        .await
        .unwrap();
    let status = runner::job_status(store, id, job).await.unwrap();
    (id, outcome, status)
}

pub(crate) async fn events(store: &Arc<dyn EventStore>, id: u64) -> Vec<Event> {
    store
        .events(&EventQuery {
            job_id: id,
            ..EventQuery::default()
        })
        .await
        .unwrap()
}

/// The names of the events, in order, optionally only those about `target`.
pub(crate) fn names<'a>(events: &'a [Event], target: Option<&str>) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| target.is_none() || e.target.as_deref() == target)
        .map(|e| e.name.as_str())
        .collect()
}
