//! The `load` step: HTTP requests at a rate (open model), by virtual users (closed model)
//! or on a ramp, with thresholds. `stampede quick` is this step built from flags.

mod config;
mod run;
mod summary;

pub use config::{
    LoadSettings, LoadStep, RequestConfig, StageConfig, ThresholdEntry, ThresholdObject,
};
pub use run::{LoadError, LoadResult, Observer, Progress, RunControl, run_load};
pub use summary::streamed_summary;

use stampede_api::job::events;

use super::{StepCtx, StepOutcome};

/// Runs a load step on one target inside a job: a job cancel stops the schedule (calls in
/// flight finish within the graceful stop); a pause lets the step run to its end. The
/// summary is written as a `LoadSummary` event; a threshold abort fails the target, a
/// crossed threshold does not (the `thresholds` reporter gives that verdict).
pub(crate) async fn run_in_job(step: &LoadStep, ctx: &StepCtx<'_>) -> Result<StepOutcome, String> {
    let settings = match step.settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(StepOutcome::Failed(problems.join("; "))),
    };
    let control = RunControl {
        stop: ctx.cancel.child_token(),
        abort: tokio_util::sync::CancellationToken::new(),
    };
    let mut observer = ctx.observer.load(ctx.name, &ctx.target.id);
    let result = run_load(&settings, &control, observer.as_mut()).await;
    let result = result.map_err(|e| format!("load step {:?}: {e}", ctx.label))?;
    let summary = result.summary();
    let payload = serde_json::to_value(&summary).map_err(|e| e.to_string())?;
    ctx.emitter
        .emit(events::LOAD_SUMMARY, Some(payload))
        .await?;
    ctx.observer.load_done(ctx.name, &ctx.target.id, &summary);
    match &result.aborted {
        Some(abort) => Ok(StepOutcome::Failed(abort.to_string())),
        None => Ok(StepOutcome::passed()),
    }
}
