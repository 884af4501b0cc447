//! Jobs: descriptors (native and ConTest v1.0), the job runner with ConTest's semantics,
//! the step interface and its registry, the job crate's own small steps, target managers
//! and reporters, and the status rebuilt from events.
//!
//! * [`Step`] is what a step plugin implements; [`Registry`] is the list of steps a
//!   job may use, built once by the binary.
//! * [`Job::parse`] reads a descriptor (YAML or JSON, native or ConTest) into a validated
//!   [`Job`], every problem at once with its path in the file.
//! * [`runner::submit`] stores a job; [`runner::run_job`] runs it (or resumes it from a
//!   pause payload) against an [`EventStore`](stampede_store::EventStore), writing every
//!   state change as an event.
//! * [`status::rebuild`] folds a job's events into its status.
//!
//! ```
//! use std::path::Path;
//! use stampede_job::{Job, Registry, steps};
//!
//! let registry = Registry::new().with(steps::Echo).with(steps::Sleep);
//! let text = "name: j\ntests: [{name: t, steps: [{name: hi, echo: {text: hello}}]}]\n";
//! let job = Job::parse(text, "job.yaml", Path::new("."), &registry).unwrap();
//! assert_eq!(job.tests[0].steps[0].plugin.key(), "echo");
//! ```

pub mod access;
pub mod comparison;
pub mod compliance;
mod descriptor;
pub mod duration;
mod emitter;
pub mod policy;
pub mod registry;
pub mod runner;
mod schema;
pub mod status;
pub mod step;
pub mod steps;
pub mod targets;
pub mod template;

pub use access::{Access, Refused};
pub use descriptor::spec::{
    CloudOptions, FileReporter as FileReporterSpec, JobSpec, ReporterSpec, ReportingSpec,
    RetriesSpec, StepEntry, TargetsSpec, TestSpec,
};
pub use descriptor::{
    CURRENT_VERSION, CsvTargets, DescriptorError, Job, SyntheticTargets, Targets, Test, TestStep,
};
pub use duration::DurationText;
pub use duration::parse as parse_duration;
pub use emitter::Emitter;
pub use registry::{Registry, StepPlugin};
pub use schema::job_schema;
pub use step::{
    Capability, Demand, JobObserver, Problem, Step, StepCtx, StepError, StepOutcome, Use, UseKind,
    Vars,
};
