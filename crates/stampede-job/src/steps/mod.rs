//! The built-in steps. Each step lives in its own file (or folder): its config, documented
//! field by field (the JSON Schema comes from these structs), and how it runs on one target.
//!
//! A step runs once per target that reaches it ([`StepCtx`]): it passes the target on
//! ([`StepOutcome::Passed`], with variables later steps may read), fails it
//! ([`StepOutcome::Failed`]; the target goes no further), or, for a pausable step, stops
//! where it is ([`StepOutcome::Paused`], with a state to resume from). A step that cannot
//! run at all returns `Err`: that fails the job (ConTest's step error).

pub(crate) mod echo;
pub(crate) mod exec;
pub(crate) mod http;
pub(crate) mod load;
pub(crate) mod robustness;
pub(crate) mod scale;
pub(crate) mod sleep;
pub(crate) mod wait_port;

use std::collections::BTreeMap;

use stampede_api::job::Target;
use tokio_util::sync::CancellationToken;

use crate::runner::{Emitter, JobObserver};

/// Step variables of one target: by step label, then by name.
pub type Vars = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// Everything a step sees while it runs on one target.
pub(crate) struct StepCtx<'a> {
    /// The target.
    pub(crate) target: &'a Target,
    /// The step's label.
    pub(crate) label: &'a str,
    /// `test/step`, for progress and messages.
    pub(crate) name: &'a str,
    /// Writes the step's events about this target.
    pub(crate) emitter: &'a Emitter,
    /// Cancelled when the job is cancelled: stop as soon as possible.
    pub(crate) cancel: &'a CancellationToken,
    /// Cancelled when the job is paused: a pausable step returns
    /// [`StepOutcome::Paused`]; any other step finishes its work.
    pub(crate) pause: &'a CancellationToken,
    /// The state a paused run of this step left, when resuming.
    pub(crate) resume: Option<serde_json::Value>,
    /// Sees load progress and summaries.
    pub(crate) observer: &'a dyn JobObserver,
}

/// How a step ended for one target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StepOutcome {
    /// The target passes on, with the variables the step set.
    Passed(BTreeMap<String, serde_json::Value>),
    /// The target failed here and goes no further.
    Failed(String),
    /// The job is pausing; resume the step from this state.
    Paused(serde_json::Value),
}

impl StepOutcome {
    /// Passed without variables.
    pub(crate) fn passed() -> StepOutcome {
        StepOutcome::Passed(BTreeMap::new())
    }
}
