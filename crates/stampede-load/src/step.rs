//! The `load` step: HTTP requests at a rate (open model), by virtual users (closed model)
//! or on a ramp, with thresholds, on each target of a job. `stampede quick` runs the same
//! [`LoadStep`] through the same [`run_load`](crate::run_load).

use stampede_api::job::events;
use stampede_job::{Capability, Demand, Problem, Step, StepCtx, StepError, StepOutcome, Use};
use tokio_util::sync::CancellationToken;

use crate::config::LoadStep;
use crate::run::{RunControl, run_load};

/// The `load` step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load;

impl Step for Load {
    type Config = LoadStep;
    const KEY: &'static str = "load";
    const SUMMARY: &'static str = "HTTP load: a rate, virtual users or a ramp, with thresholds.";
    const NEEDS: &'static [Capability] = &[Capability::Network];

    fn problems(&self, config: &LoadStep, at: &str) -> Vec<Problem> {
        Problem::all_under(at, &config.settings().err().unwrap_or_default())
    }

    fn demand(&self, config: &LoadStep) -> Demand {
        let ramp = config.stages.iter().map(|s| s.target);
        let rates = config.rate.into_iter().chain(config.start_rate).chain(ramp);
        Demand {
            requests_per_second: rates.fold(0.0, f64::max),
            connections: config
                .vus
                .into_iter()
                .chain(config.connections)
                .max()
                .unwrap_or(0),
        }
    }

    fn uses(&self, config: &LoadStep) -> Vec<Use> {
        let one = config.url.iter().map(|url| Use::connect("url", url));
        let many = (config.requests.iter().enumerate())
            .map(|(i, r)| Use::connect(format!("requests[{i}].url"), &r.url));
        one.chain(many).collect()
    }

    /// Runs a load step on one target inside a job: a job cancel stops the schedule (calls
    /// in flight finish within the graceful stop); a pause lets the step run to its end.
    /// The summary is written as a `LoadSummary` event. The target fails when the step
    /// did (a crossed threshold, failed requests where they decide, an abort; the
    /// `thresholds` reporter also gives its verdict), and when the job was cancelled while
    /// the step ran: a target is never shown as passed by a step that did not pass.
    async fn run(&self, step: &LoadStep, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        let settings = match step.settings() {
            Ok(settings) => settings,
            Err(problems) => return Ok(StepOutcome::Failed(problems.join("; "))),
        };
        let control = RunControl {
            stop: ctx.cancel.child_token(),
            abort: CancellationToken::new(),
        };
        tracing::debug!(step = ctx.name, target = %ctx.target.id, threads = settings.threads, "load: starting");
        let mut observer = ctx.observer.load(ctx.name, &ctx.target.id);
        let result = run_load(&settings, &control, observer.as_mut()).await;
        let result =
            result.map_err(|e| StepError::Failed(format!("load step {:?}: {e}", ctx.label)))?;
        let summary = result.summary();
        let payload = serde_json::to_value(&summary).expect("a summary always serializes");
        ctx.events.emit(events::LOAD_SUMMARY, Some(payload)).await?;
        ctx.observer.load_done(ctx.name, &ctx.target.id, &summary);
        tracing::debug!(
            step = ctx.name,
            target = %ctx.target.id,
            requests = summary.requests.total,
            failed = summary.requests.failed,
            dropped = summary.requests.dropped,
            "load: ended"
        );
        let mut reasons = result.reasons();
        if ctx.cancel.is_cancelled() {
            reasons.push(format!(
                "the job was cancelled after {:.1}s of the step",
                summary.duration_s
            ));
        }
        Ok(if reasons.is_empty() {
            StepOutcome::passed()
        } else {
            StepOutcome::Failed(reasons.join("; "))
        })
    }
}
