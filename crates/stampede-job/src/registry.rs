//! The registry of steps: the one place a step kind becomes known. The binary builds it
//! from its list of built-in steps and hands it to [`Job::parse`](crate::Job::parse), the
//! JSON Schema, the runner (through the parsed job) and the server; nothing else matches
//! over step names.
//!
//! A registered [`Step`] is kept type-erased ([`StepPlugin`]): its config is decoded from
//! the descriptor's JSON when the job is checked, and again per target from the config
//! rendered for that target.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::{Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;
use stampede_api::job::{StepStatus, Target, TargetStatus};
use stampede_report::junit::JunitCase;

use crate::step::{
    Capability, Demand, Problem, Step, StepCtx, StepError, StepOutcome, Use, Vars, join,
};
use crate::template;

type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A [`Step`] with its config type erased.
trait AnyStep: Send + Sync {
    fn key(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn needs(&self) -> &'static [Capability];
    fn renders_its_own_templates(&self) -> bool;
    fn shape(&self, config: &Value, at: &str) -> Result<(), Problem>;
    fn problems(&self, config: &Value, at: &str) -> Vec<Problem>;
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
    fn uses(&self, config: &Value) -> Vec<Use>;
    fn demand(&self, config: &Value) -> Demand;
    fn run<'a>(
        &'a self,
        config: Value,
        ctx: &'a StepCtx<'a>,
    ) -> LocalFuture<'a, Result<StepOutcome, StepError>>;
    fn junit_cases(&self, test: &str, step: &StepStatus) -> Vec<JunitCase>;
    fn junit_output(&self, target: &TargetStatus) -> Option<String>;
}

struct Erased<S>(S);

/// Decodes `value` into `T`, or says where and why it does not fit.
pub(crate) fn decode<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Problem::new(join(prefix, &path), e.into_inner().to_string())
    })
}

/// A target to check templates and plugin configs against before the real targets exist.
fn sample_target() -> Target {
    Target {
        id: "sample".into(),
        host: "127.0.0.1".into(),
        ipv4: "127.0.0.1".into(),
        ipv6: "::1".into(),
        url: "http://127.0.0.1/".into(),
        tms: None,
    }
}

impl<S: Step> AnyStep for Erased<S> {
    fn key(&self) -> &'static str {
        S::KEY
    }

    fn summary(&self) -> &'static str {
        S::SUMMARY
    }

    fn needs(&self) -> &'static [Capability] {
        S::NEEDS
    }

    fn renders_its_own_templates(&self) -> bool {
        S::RENDERS_ITS_OWN_TEMPLATES
    }

    fn shape(&self, config: &Value, at: &str) -> Result<(), Problem> {
        decode::<S::Config>(config, at).map(drop)
    }

    fn problems(&self, config: &Value, at: &str) -> Vec<Problem> {
        if S::RENDERS_ITS_OWN_TEMPLATES {
            return match decode::<S::Config>(config, at) {
                Ok(config) => self.0.problems(&config, at),
                Err(p) => vec![p],
            };
        }
        let template_problems = template::check_strings(config, at);
        if !template_problems.is_empty() {
            return template_problems
                .into_iter()
                .map(|p| match p.split_once(": ") {
                    Some((path, message)) => Problem::new(path, message),
                    None => Problem::new(at, p),
                })
                .collect();
        }
        let Ok(rendered) = template::render_config(config, &sample_target(), &Vars::new()) else {
            // It reads step variables: checked per target when it runs.
            return Vec::new();
        };
        match decode::<S::Config>(&rendered, at) {
            Ok(config) => self.0.problems(&config, at),
            Err(p) => vec![p],
        }
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<S::Config>()
    }

    fn demand(&self, config: &Value) -> Demand {
        decode::<S::Config>(config, "").map_or_else(|_| Demand::default(), |c| self.0.demand(&c))
    }

    fn uses(&self, config: &Value) -> Vec<Use> {
        // A config whose templates stand where numbers go decodes only once rendered;
        // its hosts are then checked per target.
        decode::<S::Config>(config, "").map_or_else(|_| Vec::new(), |c| self.0.uses(&c))
    }

    fn run<'a>(
        &'a self,
        config: Value,
        ctx: &'a StepCtx<'a>,
    ) -> LocalFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            match serde_json::from_value::<S::Config>(config) {
                Ok(config) => self.0.run(&config, ctx).await,
                Err(e) => Ok(StepOutcome::Failed(format!(
                    "the step's config, rendered for this target, is invalid: {e}"
                ))),
            }
        })
    }

    fn junit_cases(&self, test: &str, step: &StepStatus) -> Vec<JunitCase> {
        self.0.junit_cases(test, step)
    }

    fn junit_output(&self, target: &TargetStatus) -> Option<String> {
        self.0.junit_output(target)
    }
}

/// A registered step, as jobs hold it.
#[derive(Clone)]
pub struct StepPlugin(Arc<dyn AnyStep>);

impl fmt::Debug for StepPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepPlugin({})", self.key())
    }
}

impl PartialEq for StepPlugin {
    fn eq(&self, other: &StepPlugin) -> bool {
        self.key() == other.key()
    }
}

impl StepPlugin {
    /// The step's key in a step entry.
    pub fn key(&self) -> &'static str {
        self.0.key()
    }

    /// What the step does, in a line.
    pub fn summary(&self) -> &'static str {
        self.0.summary()
    }

    /// What the step needs from the machine it runs on.
    pub fn needs(&self) -> &'static [Capability] {
        self.0.needs()
    }

    /// Whether the step renders its own templates (the runner leaves them alone).
    pub(crate) fn renders_its_own_templates(&self) -> bool {
        self.0.renders_its_own_templates()
    }

    /// Whether `config` has the step config's shape (`at` is its path in the file).
    pub(crate) fn shape(&self, config: &Value, at: &str) -> Result<(), Problem> {
        self.0.shape(config, at)
    }

    /// The config's problems: templates that do not parse, and, when it does not read
    /// earlier steps' variables, its values rendered for a sample target.
    pub(crate) fn problems(&self, config: &Value, at: &str) -> Vec<Problem> {
        self.0.problems(config, at)
    }

    /// The files and hosts `config` names (see [`Step::uses`]).
    pub fn uses(&self, config: &Value) -> Vec<Use> {
        self.0.uses(config)
    }

    /// The load `config` asks for (see [`Step::demand`]).
    pub fn demand(&self, config: &Value) -> Demand {
        self.0.demand(config)
    }

    /// The config's JSON Schema.
    pub(crate) fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        self.0.schema(generator)
    }

    /// Runs the step with `config` (rendered for the target, unless the step renders its
    /// own templates).
    pub(crate) async fn run(
        &self,
        config: Value,
        ctx: &StepCtx<'_>,
    ) -> Result<StepOutcome, StepError> {
        self.0.run(config, ctx).await
    }

    /// The step's own JUnit cases.
    pub(crate) fn junit_cases(&self, test: &str, step: &StepStatus) -> Vec<JunitCase> {
        self.0.junit_cases(test, step)
    }

    /// A target's `<system-out>` in the step.
    pub(crate) fn junit_output(&self, target: &TargetStatus) -> Option<String> {
        self.0.junit_output(target)
    }
}

/// The steps a job may use, in the order the schema and messages list them.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    steps: Vec<StepPlugin>,
}

impl Registry {
    /// No steps yet.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `step`.
    ///
    /// # Panics
    ///
    /// When a step with the same key is registered already: two plugins cannot share a key,
    /// and the list that registers them is code, so this is a bug any test finds.
    #[must_use]
    pub fn with<S: Step>(mut self, step: S) -> Registry {
        assert!(
            self.get(S::KEY).is_none(),
            "step {:?} is registered twice",
            S::KEY
        );
        self.steps.push(StepPlugin(Arc::new(Erased(step))));
        self
    }

    /// The step registered under `key`.
    pub fn get(&self, key: &str) -> Option<&StepPlugin> {
        self.steps.iter().find(|s| s.key() == key)
    }

    /// Every registered step, in registration order.
    pub fn steps(&self) -> &[StepPlugin] {
        &self.steps
    }

    /// Every key, in registration order.
    pub fn keys(&self) -> Vec<&'static str> {
        self.steps.iter().map(StepPlugin::key).collect()
    }
}
