//! The `scale` step: coder's scale-test harness driven by a declared lifecycle.
//!
//! On one target (the system under test) the step compiles the config into a `Plan`
//! (`runner.rs`), runs the setup phases once, opens each update stream once and fans it
//! out per runner with a [`Dispatcher`] (`streams.rs`), registers `runners` `Runner`s
//! with a [`Harness`] and runs them, then cleans up the runs that started. The results
//! (`report.rs`) are written as one `ScaleResults` event; a run that failed fails the
//! target with a message naming the failures.
//!
//! The runs are tasks on the job's runtime: a runner spends its time waiting on sockets,
//! so one thread carries a thousand of them.
//!
//! [`Dispatcher`]: crate::Dispatcher

mod client;
pub(crate) mod config;
mod jsonpath;
mod report;
mod runner;
mod streams;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stampede_api::job::{StepStatus, events};
use stampede_job::{Capability, Problem, Step, StepCtx, StepError, StepOutcome, Use};
use stampede_report::junit::JunitCase;

use crate::{Barrier, Ctx, Harness, HarnessError, RunCtx, RunFailure, Strategy};

pub use config::ScaleConfig;
pub use report::{ScaleStepResults, scale_results};

use runner::{Holdings, Plan, Runner, RunnerState, SharedState, Unsaved, lock, run_steps};

/// Coder's `--job-timeout` and `--cleanup-job-timeout`.
const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Coder's `--cleanup-timeout`: all cleanups together.
const DEFAULT_CLEANUP_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How many failed runs the target's error names.
const NAMED_FAILURES: usize = 3;

/// The `scale` step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scale;

impl Step for Scale {
    type Config = ScaleConfig;
    const KEY: &'static str = "scale";
    const SUMMARY: &'static str =
        "N runners through a lifecycle of phases (coder's scale-test harness).";
    const NEEDS: &'static [Capability] = &[Capability::Network, Capability::WriteFiles];
    // Rendered per runner and phase, with saved values.
    const RENDERS_ITS_OWN_TEMPLATES: bool = true;

    fn problems(&self, config: &ScaleConfig, at: &str) -> Vec<Problem> {
        config.problems(at)
    }

    fn uses(&self, config: &ScaleConfig) -> Vec<Use> {
        let outputs = config.output.iter().enumerate();
        let files = outputs.filter_map(|(i, o)| Some((i, o.split_once(':')?.1)));
        files
            .map(|(i, path)| Use::write(format!("output[{i}]"), path))
            .collect()
    }

    async fn run(&self, config: &ScaleConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        run_in_job(config, ctx).await
    }

    fn junit_cases(&self, test: &str, step: &StepStatus) -> Vec<JunitCase> {
        report::junit_cases(test, step)
    }
}

/// Runs the scale step on one target. A job cancel stops the runs (each fails with
/// `context canceled`) and skips the cleanups; a pause lets the step finish.
async fn run_in_job(config: &ScaleConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
    let problems = config.problems("scale");
    if let Some(first) = problems.first() {
        return Ok(StepOutcome::Failed(format!(
            "{}: {}",
            first.path, first.message
        )));
    }
    let plan = match Plan::compile(config, ctx.target, ctx.access) {
        Ok(plan) => Arc::new(plan),
        Err(e) => return Ok(StepOutcome::Failed(e)),
    };
    let test_name = config
        .test_name
        .clone()
        .unwrap_or_else(|| ctx.label.to_owned());
    let root = Ctx::new(ctx.cancel.child_token());
    let run_timeout = config.run_timeout.unwrap_or(DEFAULT_RUN_TIMEOUT);
    // The setup and the opening of the streams get one run's time between them.
    let before_runs = root.with_timeout(run_timeout);
    let (setup, starting) = match set_up(config, &plan, &test_name, &before_runs).await {
        Ok(values) => values,
        Err(e) => return Ok(StepOutcome::Failed(e)),
    };
    let streams_ctx = root.child();
    let opening = streams::open(config, &plan, &setup, &starting, &streams_ctx);
    let mut streams = match before_runs.run(opening).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(e)) => return Ok(StepOutcome::Failed(e)),
        Err(stopped) => {
            return Ok(StepOutcome::Failed(format!(
                "opening the update streams: {stopped}"
            )));
        }
    };
    let (mut harness, states) = match register(config, &plan, &test_name, starting, &mut streams) {
        Ok(registered) => registered,
        Err(e) => return Ok(StepOutcome::Failed(e)),
    };

    let (step, target) = (ctx.name, &ctx.target.id);
    let runners = harness.len();
    tracing::debug!(step = step, target = %target, runners, "scale: runs starting");
    ctx.observer
        .note(&format!("{step} on {target}: {runners} runners started"));
    let fatal = |e: HarnessError| StepError::Failed(format!("scale step {:?}: {e}", ctx.label));
    harness.run(&root).await.map_err(fatal)?;
    streams.close().await;
    let results = harness.results().map_err(fatal)?;
    ctx.observer.note(&format!(
        "{step} on {target}: runs ended, {} passed, {} failed in {}",
        results.total_pass,
        results.total_fail,
        // Go's form, to the millisecond: 4.427s, not 4.427359206s.
        crate::go_duration(round_to_ms(results.elapsed))
    ));
    // After a cancel, as coder's CLI after an interrupt, no cleanup is tried: every one
    // would stop at once and be reported as a failed cleanup that never ran.
    let cancelled = root.token().is_cancelled();
    if cancelled && !config.no_cleanup && !config.cleanup.is_empty() {
        ctx.observer.note(&format!(
            "{step} on {target}: cancelled, cleanups skipped; what the runners created is left"
        ));
    }
    let cleanup_errors = if config.no_cleanup || config.cleanup.is_empty() || cancelled {
        Vec::new()
    } else {
        let deadline = config.cleanup_deadline.unwrap_or(DEFAULT_CLEANUP_DEADLINE);
        clean_up(&harness, &root, &test_name, deadline, &states, ctx).await
    };

    let payload = report::payload(config, &plan, &test_name, &results, &states, cleanup_errors);
    let value = serde_json::to_value(&payload).expect("a ScaleResults always serializes");
    ctx.events.emit(events::SCALE_RESULTS, Some(value)).await?;
    if let Err(e) = report::write_outputs(&payload, &results, &config.output, ctx.access) {
        return Ok(StepOutcome::Failed(e));
    }
    Ok(match report::failure(&payload, NAMED_FAILURES) {
        Some(message) => StepOutcome::Failed(message),
        None => StepOutcome::passed(),
    })
}

/// Runs the setup phases once; returns what they saved and each runner's starting values
/// (those, plus `id` and `index`).
async fn set_up(
    config: &ScaleConfig,
    plan: &Plan,
    test_name: &str,
    ctx: &Ctx,
) -> Result<(BTreeMap<String, String>, Vec<BTreeMap<String, String>>), String> {
    let setup = Mutex::new(RunnerState::default());
    let setup_ctx = RunCtx::new(ctx.clone(), test_name, "setup", Default::default());
    run_steps(
        plan,
        &plan.setup,
        &setup,
        &setup_ctx,
        &mut Holdings::default(),
        Unsaved::Fail,
    )
    .await
    .map_err(|e| format!("setup: {e}"))?;
    let saved = setup.into_inner().map(|s| s.saved).unwrap_or_default();
    let starting = (0..config.runners)
        .map(|i| {
            let mut values = saved.clone();
            values.insert("id".into(), i.to_string());
            values.insert("index".into(), i.to_string());
            values
        })
        .collect();
    Ok((saved, starting))
}

/// A harness with one runner per starting values, each holding its stream updates and its
/// barrier places; the runners' states, by index.
fn register(
    config: &ScaleConfig,
    plan: &Arc<Plan>,
    test_name: &str,
    starting: Vec<BTreeMap<String, String>>,
    streams: &mut streams::Streams,
) -> Result<(Harness, Vec<SharedState>), String> {
    let barriers: Vec<(String, Barrier)> = plan
        .barriers()
        .into_iter()
        .map(|name| (name, Barrier::new(starting.len())))
        .collect();
    let mut run_strategy = Strategy::from_concurrency(config.concurrency);
    if config.shuffle {
        run_strategy = run_strategy.shuffled(config.seed);
    }
    let run_timeout = config.run_timeout.unwrap_or(DEFAULT_RUN_TIMEOUT);
    // Without a deadline, a cleanup whose server never answers would hold the step forever.
    let cleanup_strategy = Strategy::from_concurrency(config.cleanup_concurrency.unwrap_or(1))
        .with_timeout(config.cleanup_timeout.unwrap_or(DEFAULT_RUN_TIMEOUT));
    let mut harness = Harness::new(run_strategy.with_timeout(run_timeout), cleanup_strategy);
    let mut states = Vec::with_capacity(starting.len());
    for (i, saved) in starting.into_iter().enumerate() {
        let holdings = Holdings {
            updates: streams.subscribe(i)?,
            places: barriers
                .iter()
                .map(|(name, barrier)| (name.clone(), barrier.participant()))
                .collect(),
        };
        let state = Arc::new(Mutex::new(RunnerState {
            saved,
            ..RunnerState::default()
        }));
        states.push(state.clone());
        let runner = Runner {
            plan: plan.clone(),
            state,
            holdings: Mutex::new(Some(holdings)),
        };
        harness
            .add_cleanable_run(test_name, &i.to_string(), runner)
            .map_err(|e| e.to_string())?;
    }
    Ok((harness, states))
}

/// Cleans up the runs that started, all within `deadline` (coder's `--cleanup-timeout`);
/// the failures, as `<full id>: <error>`. When the deadline passes, the cleanups that have
/// not ended (`states[i].cleanup_ended`) are abandoned: those running stop, the others
/// never start, and the step's observer is told.
async fn clean_up(
    harness: &Harness,
    root: &Ctx,
    test_name: &str,
    deadline: Duration,
    states: &[SharedState],
    ctx: &StepCtx<'_>,
) -> Vec<String> {
    // A token of its own, so that the deadline stops the cleanups and not the job.
    let all = root.child();
    let mut cleaning = std::pin::pin!(harness.cleanup(&all));
    let (result, ended) = match tokio::time::timeout(deadline, &mut cleaning).await {
        Ok(result) => (result, None),
        Err(_) => {
            // Read before the cancel: a cleanup stopped by it ends too, but abandoned.
            let ended: Vec<bool> = states.iter().map(|s| lock(s).cleanup_ended).collect();
            all.token().cancel();
            (cleaning.await, Some(ended))
        }
    };
    let errors = match result {
        Ok(()) => Vec::new(),
        Err(HarnessError::Cleanup(errors)) => errors,
        Err(e) => return vec![e.to_string()],
    };
    let mut abandoned = 0;
    let errors = errors
        .iter()
        .map(|e| {
            // Cleanups run in registration order: a position is a runner's index.
            let full_id = format!("{test_name}/{}", e.index);
            let cut_short = ended
                .as_ref()
                .is_some_and(|ended| !ended.get(e.index).copied().unwrap_or(true));
            if !cut_short {
                return format!("{full_id}: {}", e.failure);
            }
            abandoned += 1;
            let when = match &e.failure {
                RunFailure::Stopped(_) => "before it started".to_owned(),
                failure => format!("while it ran ({failure})"),
            };
            format!(
                "{full_id}: abandoned {when}: the cleanup_deadline ({}) passed; raise it, or \
                 remove by hand what the run made",
                crate::go_duration(deadline)
            )
        })
        .collect();
    if abandoned > 0 {
        ctx.observer.note(&format!(
            "{} on {}: cleanup_deadline ({}) passed, {abandoned} cleanup(s) abandoned; raise \
             it, or remove by hand what those runs made",
            ctx.name,
            ctx.target.id,
            crate::go_duration(deadline),
        ));
    }
    errors
}

/// `duration` to the nearest millisecond.
fn round_to_ms(duration: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(
        u64::try_from((duration.as_micros() + 500) / 1000).unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_in_notes_are_rounded_to_the_millisecond() {
        let elapsed = Duration::from_nanos(4_427_359_206);
        assert_eq!(crate::go_duration(super::round_to_ms(elapsed)), "4.427s");
        assert_eq!(
            super::round_to_ms(Duration::from_micros(1_500)),
            Duration::from_millis(2)
        );
    }
}
