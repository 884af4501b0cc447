//! `sleep`: waits, per target. Pausable: a pause stores the absolute deadline, so a resumed
//! job sleeps only what was left (or not at all if the deadline passed meanwhile). A cancel
//! ends the sleep and the target passes, as in ConTest.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use stampede_core::{from_micros, micros};

use crate::duration;
use crate::step::{Capability, Step, StepCtx, StepError, StepOutcome};

/// The version of the state a paused sleep leaves.
const STATE_VERSION: u64 = 1;

/// Waits for a while.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepConfig {
    /// How long to sleep (`10s`, `1m30s`, `500ms`, or seconds).
    #[serde(deserialize_with = "duration::required")]
    #[schemars(with = "crate::duration::DurationText")]
    pub duration: Duration,
}

/// Waits; pausable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

impl Step for Sleep {
    type Config = SleepConfig;
    const KEY: &'static str = "sleep";
    const SUMMARY: &'static str = "Wait (pausable).";
    const NEEDS: &'static [Capability] = &[];

    async fn run(&self, config: &SleepConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        let resume_error = |why: String| StepError::Resume {
            step: Self::KEY,
            label: ctx.label.to_string(),
            why,
        };
        let now_ms = || u64::try_from(micros(ctx.clock.now()) / 1000).unwrap_or(0);
        let deadline_ms = match &ctx.resume {
            Some(state) => {
                if state.get("V").and_then(serde_json::Value::as_u64) != Some(STATE_VERSION) {
                    return Err(resume_error(format!(
                        "its saved state {state} is not version {STATE_VERSION}"
                    )));
                }
                state
                    .get("D")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| {
                        resume_error(format!("its saved state {state} has no deadline"))
                    })?
            }
            None => now_ms()
                .saturating_add(u64::try_from(config.duration.as_millis()).unwrap_or(u64::MAX)),
        };
        let deadline =
            from_micros(i64::try_from(deadline_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => Ok(StepOutcome::passed()),
            () = ctx.clock.sleep_until(deadline) => Ok(StepOutcome::passed()),
            () = ctx.pause.cancelled() => Ok(StepOutcome::Paused(serde_json::json!({"V": STATE_VERSION, "D": deadline_ms}))),
        }
    }
}
