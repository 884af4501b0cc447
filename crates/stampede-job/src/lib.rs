//! Job descriptors and the built-in steps.
//!
//! Today a job file holds tests made of named `load` steps; the jobs issue grows the same
//! [`JobFile`] into ConTest's full descriptor (targets, runs, reporters) without breaking
//! files written for it now. `stampede quick` builds a [`LoadStep`] from its flags, so a
//! quick run and a file run go through the same [`run_load`].

mod descriptor;
mod duration;
mod steps;

pub use descriptor::{CURRENT_VERSION, DescriptorError, JobFile, StepEntry, TestSpec};
pub use duration::parse as parse_duration;
pub use steps::load::{
    LoadError, LoadResult, LoadSettings, LoadStep, Observer, Progress, RequestConfig, RunControl,
    StageConfig, ThresholdEntry, ThresholdObject, run_load,
};
