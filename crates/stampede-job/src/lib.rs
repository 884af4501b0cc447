//! Jobs: descriptors (native and ConTest v1.0), the job runner with ConTest's semantics,
//! the built-in steps, target managers and reporters, and the status rebuilt from events.
//!
//! * [`Job::parse`] reads a descriptor (YAML or JSON, native or ConTest) into a validated
//!   [`Job`], every problem at once with its path in the file.
//! * [`runner::submit`] stores a job; [`runner::run_job`] runs it (or resumes it from a
//!   pause payload) against an [`EventStore`](stampede_store::EventStore), writing every
//!   state change as an event.
//! * [`status::rebuild`] folds a job's events into its status.
//!
//! `stampede quick` builds a [`LoadStep`] from its flags, so a quick run and a job's load
//! step go through the same [`run_load`].

pub mod comparison;
mod descriptor;
mod duration;
pub mod runner;
mod schema;
pub mod status;
mod steps;
pub mod targets;
pub mod template;

pub use descriptor::spec::{
    CloudOptions, FileReporter as FileReporterSpec, JobSpec, ReporterSpec, ReportingSpec,
    RetriesSpec, StepEntry, TargetsSpec, TestSpec,
};
pub use descriptor::{
    CURRENT_VERSION, CsvTargets, DescriptorError, Job, Step, StepKind, SyntheticTargets, Targets,
    Test,
};
pub use duration::parse as parse_duration;
pub use schema::job_schema;
pub use steps::Vars;
pub use steps::echo::EchoConfig;
pub use steps::exec::ExecConfig;
pub use steps::http::HttpStepConfig;
pub use steps::load::{
    LoadError, LoadResult, LoadSettings, LoadStep, Observer, Progress, RequestConfig, RunControl,
    StageConfig, ThresholdEntry, ThresholdObject, run_load, streamed_summary,
};
pub use steps::robustness::{
    BodyAction, Faults, HttpStoreConfig, Randomized, RobustnessConfig, SnapshotterConfig,
};
pub use steps::scale::ScaleConfig;
pub use steps::sleep::SleepConfig;
pub use steps::wait_port::WaitPortConfig;
