//! `sleep`: waits, per target. Pausable: a pause stores the absolute deadline, so a resumed
//! job sleeps only what was left (or not at all if the deadline passed meanwhile). A cancel
//! ends the sleep and the target passes, as in ConTest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{StepCtx, StepOutcome};
use crate::duration;

/// The version of the state a paused sleep leaves.
const STATE_VERSION: u64 = 1;

/// Waits for a while.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepConfig {
    /// How long to sleep (`10s`, `1m30s`, `500ms`, or seconds).
    #[serde(deserialize_with = "duration::required")]
    #[schemars(with = "crate::schema::DurationText")]
    pub duration: Duration,
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) async fn run(config: &SleepConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, String> {
    let deadline_ms = match &ctx.resume {
        Some(state) => {
            if state.get("V").and_then(serde_json::Value::as_u64) != Some(STATE_VERSION) {
                return Err(format!(
                    "cannot resume sleep {:?}: its saved state {state} is not version {STATE_VERSION}",
                    ctx.label
                ));
            }
            state
                .get("D")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| {
                    format!(
                        "cannot resume sleep {:?}: its saved state {state} has no deadline",
                        ctx.label
                    )
                })?
        }
        None => {
            now_ms().saturating_add(u64::try_from(config.duration.as_millis()).unwrap_or(u64::MAX))
        }
    };
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Ok(StepOutcome::passed()),
        () = tokio::time::sleep(left) => Ok(StepOutcome::passed()),
        () = ctx.pause.cancelled() => Ok(StepOutcome::Paused(serde_json::json!({"V": STATE_VERSION, "D": deadline_ms}))),
    }
}
