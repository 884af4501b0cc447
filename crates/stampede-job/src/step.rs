//! The step interface: what a step plugin is ([`Step`]), what it sees while it runs on one
//! target ([`StepCtx`]), how it ends ([`StepOutcome`], [`StepError`]), what it needs from the
//! host ([`Capability`]) and how its config's problems are told ([`Problem`]).
//!
//! A step is one type, in its own file or folder, registered once with a
//! [`Registry`](crate::Registry) by the binary. Steps see this module and the vocabulary
//! crates, never the runner: the runner and the descriptor reach steps only through the
//! registry.
//!
//! A step runs once per target that reaches it: it passes the target on
//! ([`StepOutcome::Passed`], with variables later steps may read), fails it
//! ([`StepOutcome::Failed`]; the target goes no further), or, for a pausable step, stops
//! where it is ([`StepOutcome::Paused`], with a state to resume from). A step that cannot
//! run at all returns a [`StepError`]: that fails the job (ConTest's step error).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use stampede_api::Summary;
use stampede_api::job::{StepStatus, Target, TargetStatus};
use stampede_core::Clock;
use stampede_report::junit::JunitCase;
use stampede_store::StoreError;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::emitter::Emitter;

/// Step variables of one target: by step label, then by name.
pub type Vars = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// A step plugin: its key in a step entry, its config, its rules and how it runs on one
/// target.
///
/// ```ignore
/// pub struct Sleep;
/// impl Step for Sleep {
///     type Config = SleepConfig;
///     const KEY: &'static str = "sleep";
///     const SUMMARY: &'static str = "Wait (pausable).";
///     const NEEDS: &'static [Capability] = &[];
///     async fn run(&self, config: &SleepConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> { ... }
/// }
/// ```
// The futures are not `Send` on purpose: targets walk the pipeline on the runner's thread,
// and a step's observer need not be `Send` (see ARCHITECTURE.md, "The runner is
// single-threaded").
#[allow(async_fn_in_trait)]
pub trait Step: Send + Sync + 'static {
    /// The config, as written under [`KEY`](Step::KEY). Its doc comments are the user
    /// documentation and the JSON Schema; `deny_unknown_fields`, please.
    type Config: DeserializeOwned + JsonSchema;
    /// The key that selects this step in a step entry: `load`, `exec`.
    const KEY: &'static str;
    /// What the step does, in a line: the schema's description of its key.
    const SUMMARY: &'static str;
    /// What the step needs from the machine it runs on.
    const NEEDS: &'static [Capability];
    /// The step renders its own templates (per runner and phase, say); otherwise the runner
    /// renders every string of the config for the target before [`run`](Step::run), and
    /// validation checks the config rendered for a sample target.
    const RENDERS_ITS_OWN_TEMPLATES: bool = false;

    /// The config's problems beyond its shape, each with its path under `at` (the config's
    /// own path in the file, e.g. `tests[0].steps[1].load`).
    fn problems(&self, _config: &Self::Config, _at: &str) -> Vec<Problem> {
        Vec::new()
    }

    /// The files and hosts `config` names, for a job server's policy: those without
    /// templates are checked when the job is submitted, and the hosts again per target
    /// (rendered) before the step runs. Files are opened through
    /// [`Access::path`](crate::Access::path) all the same.
    fn uses(&self, _config: &Self::Config) -> Vec<Use> {
        Vec::new()
    }

    /// How much load `config` asks of the machine that runs it, for a job server's limits.
    fn demand(&self, _config: &Self::Config) -> Demand {
        Demand::default()
    }

    /// Runs the step on one target.
    async fn run(&self, config: &Self::Config, ctx: &StepCtx<'_>)
    -> Result<StepOutcome, StepError>;

    /// JUnit test cases of its own, beyond the one per target the `junit` reporter writes
    /// (a scale step's runs).
    fn junit_cases(&self, _test: &str, _step: &StepStatus) -> Vec<JunitCase> {
        Vec::new()
    }

    /// Text for a target's JUnit case `<system-out>`, from the target's events in the step.
    fn junit_output(&self, _target: &TargetStatus) -> Option<String> {
        None
    }
}

/// What a step, reporter, target source or fetcher needs from the machine it runs on; a
/// job server decides per project what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Starts processes on the machine.
    RunProcesses,
    /// Reads files the job names.
    ReadFiles,
    /// Writes files the job names.
    WriteFiles,
    /// Opens network connections to hosts the job names.
    Network,
}

/// A file or host a step's config names (see [`Step::uses`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// Its field in the config (`url`, `requests[1].url`).
    pub at: String,
    /// What the step does with it.
    pub kind: UseKind,
    /// The path, URL, `host:port` or host, as written.
    pub name: String,
}

/// The load a step's config asks for (see [`Step::demand`]), per target.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Demand {
    /// The most requests per second it schedules.
    pub requests_per_second: f64,
    /// The most connections (or virtual users) it opens.
    pub connections: u64,
}

/// What a step does with a [`Use`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    /// Reads the file or folder.
    Read,
    /// Writes the file or into the folder.
    Write,
    /// Connects to the host.
    Connect,
}

impl Use {
    /// Reads `name` (a path), named at `at`.
    pub fn read(at: impl Into<String>, name: impl Into<String>) -> Use {
        Use {
            at: at.into(),
            kind: UseKind::Read,
            name: name.into(),
        }
    }

    /// Writes `name` (a path), named at `at`.
    pub fn write(at: impl Into<String>, name: impl Into<String>) -> Use {
        Use {
            at: at.into(),
            kind: UseKind::Write,
            name: name.into(),
        }
    }

    /// Connects to `name` (a URL, `host:port` or host), named at `at`.
    pub fn connect(at: impl Into<String>, name: impl Into<String>) -> Use {
        Use {
            at: at.into(),
            kind: UseKind::Connect,
            name: name.into(),
        }
    }
}

/// Everything a step sees while it runs on one target.
#[non_exhaustive]
pub struct StepCtx<'a> {
    /// The target.
    pub target: &'a Target,
    /// The step's label.
    pub label: &'a str,
    /// `test/step`, for progress and messages.
    pub name: &'a str,
    /// Writes the step's events about this target, and reads those of earlier runs.
    pub events: &'a Emitter,
    /// The variables earlier steps set for this target.
    pub vars: &'a Vars,
    /// Cancelled when the job is cancelled or the step's timeout passes: stop as soon as
    /// possible.
    pub cancel: &'a CancellationToken,
    /// Cancelled when the job is paused: a pausable step returns
    /// [`StepOutcome::Paused`]; any other step finishes its work.
    pub pause: &'a CancellationToken,
    /// The state a paused run of this step left, when resuming.
    pub resume: Option<serde_json::Value>,
    /// Sees progress and milestones.
    pub observer: &'a dyn JobObserver,
    /// The time, and waits that must survive a pause.
    pub clock: &'a dyn Clock,
    /// The files, hosts and processes the job may use: open files and start processes
    /// through it.
    pub access: &'a Access,
}

/// How a step ended for one target.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The target passes on, with the variables the step set.
    Passed(BTreeMap<String, serde_json::Value>),
    /// The target failed here and goes no further.
    Failed(String),
    /// The job is pausing; resume the step from this state.
    Paused(serde_json::Value),
}

impl StepOutcome {
    /// Passed without variables.
    pub fn passed() -> StepOutcome {
        StepOutcome::Passed(BTreeMap::new())
    }
}

/// Why a step could not run at all; the job fails with it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StepError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A paused step's state cannot be resumed from.
    #[error("cannot resume {step} {label:?}: {why}")]
    Resume {
        /// The step's key.
        step: &'static str,
        /// The step's label.
        label: String,
        /// What is wrong with the state.
        why: String,
    },
    /// The step's machinery failed (an engine thread, a harness), said in its own words.
    #[error("{0}")]
    Failed(String),
}

/// A problem with a descriptor, with its path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `tests[0].steps[1].load.rate`.
    pub path: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The `field: message`s a config's own check found, each placed under `at`.
    pub fn all_under(at: &str, messages: &[String]) -> Vec<Problem> {
        messages.iter().map(|m| Problem::under(at, m)).collect()
    }

    /// A `field: message` found by a config's own check, placed under `at`.
    pub fn under(at: &str, message: &str) -> Problem {
        match message.split_once(": ") {
            Some((field, rest)) if !field.contains(' ') => Problem::new(join(at, field), rest),
            _ => Problem::new(at, message),
        }
    }
}

/// Adds `prefix` to a path: `tests[0]` + `name` = `tests[0].name`.
pub(crate) fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// Sees what a running job does, for progress on a terminal or a server's live view.
pub trait JobObserver {
    /// A load step starts on a target (`test/step` names it): who sees its progress every
    /// second.
    fn load(&self, _step: &str, _target: &str) -> Box<dyn stampede_metrics::Observer> {
        Box::new(())
    }
    /// A load step (`test/step`) ended on a target.
    fn load_done(&self, _step: &str, _target: &str, _summary: &Summary) {}
    /// A milestone: a run started, a test's targets were acquired, a reporter judged.
    fn note(&self, _message: &str) {}
}

impl JobObserver for () {}
