//! `echo` and `randecho`, ConTest's simplest steps: `echo` passes every target (its text,
//! templated per target, becomes the variable `text`); `randecho` passes or fails each target
//! at random and says which with a `TargetSucceeded` or `TargetFailed` event.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use schemars::JsonSchema;
use serde::Deserialize;
use stampede_api::job::events;

use crate::step::{Capability, Step, StepCtx, StepError, StepOutcome};

/// Passes the target on; the text becomes the step variable `text`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoConfig {
    /// The text (a template over the target).
    pub text: String,
}

/// ConTest's `echo`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Step for Echo {
    type Config = EchoConfig;
    const KEY: &'static str = "echo";
    const SUMMARY: &'static str = "Pass the target on (ConTest's `echo`).";
    const NEEDS: &'static [Capability] = &[];

    async fn run(&self, config: &EchoConfig, _: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        Ok(StepOutcome::Passed(BTreeMap::from([(
            "text".to_string(),
            serde_json::Value::String(config.text.clone()),
        )])))
    }
}

/// ConTest's `randecho`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandEcho;

impl Step for RandEcho {
    type Config = EchoConfig;
    const KEY: &'static str = "randecho";
    const SUMMARY: &'static str = "Pass or fail the target at random (ConTest's `randecho`).";
    const NEEDS: &'static [Capability] = &[];

    async fn run(&self, config: &EchoConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        // A fresh random bit from the standard library's randomly keyed hasher.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(ctx.target.id.as_bytes());
        let passed = hasher.finish() & 1 == 0;
        let payload = serde_json::json!({"Msg": config.text});
        if passed {
            ctx.events
                .emit(events::TARGET_SUCCEEDED, Some(payload))
                .await?;
            Ok(StepOutcome::passed())
        } else {
            ctx.events
                .emit(events::TARGET_FAILED, Some(payload))
                .await?;
            Ok(StepOutcome::Failed(format!(
                "randecho failed target {:?} at random",
                ctx.target.id
            )))
        }
    }
}
