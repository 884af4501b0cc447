//! The `load` step: HTTP requests at a rate (open model), by virtual users (closed model)
//! or on a ramp, with thresholds. `stampede quick` is this step built from flags.

mod config;
mod run;
mod summary;

pub use config::{
    LoadSettings, LoadStep, RequestConfig, StageConfig, ThresholdEntry, ThresholdObject,
};
pub use run::{LoadError, LoadResult, Observer, Progress, RunControl, run_load};
