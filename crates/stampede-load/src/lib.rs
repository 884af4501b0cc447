//! The load run and the steps built on it.
//!
//! * [`run_load`] — one coordinator plus one engine thread per core: each thread owns a
//!   current-thread runtime, a [`Worker`](stampede_engine::Worker) calling the HTTP action,
//!   its connections and its recorder; the coordinator merges their per-second snapshots,
//!   reports progress to an [`Observer`](stampede_metrics::Observer), evaluates thresholds
//!   and stops the threads. `stampede quick` calls it with a [`LoadStep`] built from flags.
//!   It is generic over the [`ActionPlan`] (HTTP's is `HttpPlan`): another protocol plugs
//!   in there, without touching the coordinator or the job runner.
//! * [`Load`] — the `load` step: [`run_load`] on each target of a job.
//! * [`Http`] — the `http` step: one request with checks, a one-iteration load run.

mod config;
mod http;
mod run;
mod step;
mod summary;

pub use config::{
    LoadSettings, LoadStep, RequestConfig, StageConfig, ThresholdEntry, ThresholdObject,
};
pub use http::{Http, HttpStepConfig};
pub use run::{ActionPlan, LoadError, LoadResult, RunControl, run_load};
pub use step::Load;
