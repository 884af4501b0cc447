//! One test attempt's pipeline: every target walks the steps on its own (a slow target
//! does not hold back a fast one), all targets at once on the runner's thread.
//!
//! For each target and step the runner writes `TargetIn`, runs the step, then writes
//! `TargetOut` or `TargetErr`; a failed target goes no further. Templates in a step's config
//! are rendered for the target (and its earlier steps' variables) just before the step runs;
//! a config that does not render or decode fails that target, not the job.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use serde_json::Value;
use stampede_api::job::{
    ErrorPayload, TEST_RUNNER_STATE_VERSION, Target, TargetState, TestRunnerState, events,
};

use super::{Attempt, Emitter, JobControl, JobObserver};
use crate::descriptor::{self, StepKind, Test};
use crate::steps::{self, StepCtx, StepOutcome, Vars};

/// Where one target is.
#[derive(Debug, Clone, Default)]
struct Walk {
    step: usize,
    entered: bool,
    error: Option<String>,
    vars: Vars,
    step_state: Option<Value>,
}

enum End {
    /// Reached the end of the pipeline, or failed (see `Walk::error`).
    Done,
    /// Stopped for a pause.
    Paused,
    /// Stopped for a cancel.
    Cancelled,
    /// The step could not run at all: the job fails.
    Fatal(String),
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, StepOutcome> {
    serde_json::from_value(value).map_err(|e| {
        StepOutcome::Failed(format!(
            "the step's config, rendered for this target, is invalid: {e}"
        ))
    })
}

async fn run_step(kind: StepKind, config: Value, ctx: &StepCtx<'_>) -> Result<StepOutcome, String> {
    macro_rules! step {
        ($type:ty, $run:path) => {
            match decode::<$type>(config) {
                Ok(config) => $run(&config, ctx).await,
                Err(failed) => Ok(failed),
            }
        };
    }
    match kind {
        StepKind::Load => step!(steps::load::LoadStep, steps::load::run_in_job),
        StepKind::Exec => step!(steps::exec::ExecConfig, steps::exec::run),
        StepKind::Sleep => step!(steps::sleep::SleepConfig, steps::sleep::run),
        StepKind::Http => step!(steps::http::HttpStepConfig, steps::http::run),
        StepKind::WaitPort => step!(steps::wait_port::WaitPortConfig, steps::wait_port::run),
        StepKind::Echo => step!(steps::echo::EchoConfig, steps::echo::echo),
        StepKind::RandEcho => step!(steps::echo::EchoConfig, steps::echo::randecho),
        StepKind::Scale => step!(steps::scale::ScaleConfig, steps::scale::run_in_job),
        StepKind::Robustness => step!(steps::robustness::RobustnessConfig, steps::robustness::run),
    }
}

fn error_payload(error: &str) -> Option<Value> {
    Some(
        serde_json::to_value(ErrorPayload {
            error: error.to_string(),
        })
        .expect("serializes"),
    )
}

async fn walk(
    test: &Test,
    target: &Target,
    walk: &mut Walk,
    emitter: &Emitter,
    control: &JobControl,
    observer: &dyn JobObserver,
) -> End {
    while walk.step < test.steps.len() {
        let step = &test.steps[walk.step];
        if step.disabled {
            walk.step += 1;
            walk.entered = false;
            continue;
        }
        let emitter = emitter.at(Some(&step.label), Some(&target.id));
        if !walk.entered {
            if control.cancel.is_cancelled() {
                return End::Cancelled;
            }
            if control.pause.is_cancelled() {
                return End::Paused;
            }
            if let Err(e) = emitter.emit(events::TARGET_IN, None).await {
                return End::Fatal(e);
            }
            walk.entered = true;
        }
        let name = format!("{}/{}", test.name, step.label);
        // The step's own cancel: the job's, or the step's timeout.
        let step_cancel = control.cancel.child_token();
        let ctx = StepCtx {
            target,
            label: &step.label,
            name: &name,
            emitter: &emitter,
            cancel: &step_cancel,
            pause: &control.pause,
            resume: walk.step_state.take(),
            observer,
        };
        // A scale step renders its own templates, per runner and phase.
        let rendered = match step.kind {
            StepKind::Scale => Ok(step.config.clone()),
            _ => descriptor::render(&step.config, target, &walk.vars),
        };
        let outcome = match rendered {
            Ok(config) => {
                let running = run_step(step.kind, config, &ctx);
                tokio::pin!(running);
                let limit = async {
                    match step.timeout {
                        Some(timeout) => tokio::time::sleep(timeout).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    outcome = &mut running => outcome,
                    () = limit => {
                        // Stopped as a cancel stops it, then failed whatever it says.
                        step_cancel.cancel();
                        let _ = running.await;
                        let timeout = step.timeout.unwrap_or_default();
                        Ok(StepOutcome::Failed(format!(
                            "the step did not end within its timeout ({})",
                            humantime::format_duration(timeout)
                        )))
                    }
                }
            }
            Err(e) => Ok(StepOutcome::Failed(format!(
                "cannot render the step's config: {e}"
            ))),
        };
        let written = match outcome {
            Err(fatal) => {
                return End::Fatal(format!(
                    "step {:?} on target {:?}: {fatal}",
                    step.label, target.id
                ));
            }
            Ok(StepOutcome::Paused(state)) => {
                walk.step_state = Some(state);
                return End::Paused;
            }
            Ok(StepOutcome::Failed(error)) => {
                let written = emitter
                    .emit(events::TARGET_ERR, error_payload(&error))
                    .await;
                walk.error = Some(error);
                walk.step = test.steps.len();
                walk.entered = false;
                written
            }
            Ok(StepOutcome::Passed(vars)) => {
                if !vars.is_empty() {
                    walk.vars.insert(step.label.clone(), vars);
                }
                walk.step += 1;
                walk.entered = false;
                emitter.emit(events::TARGET_OUT, None).await
            }
        };
        if let Err(e) = written {
            return End::Fatal(e);
        }
    }
    End::Done
}

/// Runs the targets through the pipeline, from where `state` left them if resuming.
pub(super) async fn run(
    test: &Test,
    targets: &[Target],
    state: Option<TestRunnerState>,
    emitter: &Emitter,
    control: &JobControl,
    observer: &dyn JobObserver,
) -> Result<Attempt, String> {
    if let Some(state) = &state
        && state.version != TEST_RUNNER_STATE_VERSION
    {
        return Err(format!(
            "cannot resume: the test runner state is version {}, this stampede reads version {TEST_RUNNER_STATE_VERSION}",
            state.version
        ));
    }
    let mut walks: Vec<Walk> = targets
        .iter()
        .map(|target| {
            let saved = state.as_ref().and_then(|s| s.targets.get(&target.id));
            saved.map_or_else(Walk::default, |s| Walk {
                step: s.step,
                entered: s.entered,
                error: s.error.clone(),
                vars: s.vars.clone(),
                step_state: s.step_state.clone(),
            })
        })
        .collect();
    // A step that cannot run fails the job: the other targets' steps are stopped (as for a
    // cancel) rather than left to run to their end.
    let fatal = control.cancel.child_token();
    let attempt = JobControl {
        cancel: fatal.clone(),
        pause: control.pause.clone(),
    };
    let ends = join_all(walks.iter_mut().zip(targets).map(|(w, target)| {
        let (attempt, fatal) = (&attempt, &fatal);
        async move {
            let end = walk(test, target, w, emitter, attempt, observer).await;
            if matches!(end, End::Fatal(_)) {
                fatal.cancel();
            }
            end
        }
    }))
    .await;
    if let Some(fatal) = ends.iter().find_map(|e| match e {
        End::Fatal(why) => Some(why.clone()),
        _ => None,
    }) {
        return Err(fatal);
    }
    // A cancel asked for after a pause wins: the job ends cancelled, its targets released.
    if control.cancel.is_cancelled() {
        return Ok(Attempt::Cancelled);
    }
    if ends.iter().any(|e| matches!(e, End::Paused)) {
        let states = targets
            .iter()
            .zip(walks)
            .map(|(target, w)| {
                let state = TargetState {
                    step: w.step,
                    entered: w.entered,
                    error: w.error,
                    vars: w.vars,
                    step_state: w.step_state,
                };
                (target.id.clone(), state)
            })
            .collect::<BTreeMap<_, _>>();
        return Ok(Attempt::Paused(
            targets.to_vec(),
            TestRunnerState {
                version: TEST_RUNNER_STATE_VERSION,
                targets: states,
            },
        ));
    }
    Ok(Attempt::Done(walks.iter().all(|w| w.error.is_none())))
}
