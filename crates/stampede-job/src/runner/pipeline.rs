//! One test attempt's pipeline: every target walks the steps on its own (a slow target
//! does not hold back a fast one), all targets at once on the runner's thread.
//!
//! For each target and step the runner writes `TargetIn`, runs the step, then writes
//! `TargetOut` or `TargetErr`; a failed target goes no further. Templates in a step's config
//! are rendered for the target (and its earlier steps' variables) just before the step runs;
//! a config that does not render or decode fails that target, not the job.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::Value;
use stampede_api::job::{
    ErrorPayload, TEST_RUNNER_STATE_VERSION, Target, TargetState, TestRunnerState, events,
};

use super::{Attempt, Emitter, Fatal, JobControl, JobObserver};
use crate::access::Access;
use crate::descriptor::{Test, TestStep};
use crate::step::{StepCtx, StepOutcome, UseKind, Vars};
use crate::template;

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
    Fatal(Fatal),
}

fn error_payload(error: &str) -> Option<Value> {
    Some(
        serde_json::to_value(ErrorPayload {
            error: error.to_string(),
        })
        .expect("serializes"),
    )
}

/// Where the rendered config of a step reaches a host the job may not reach from this
/// target.
fn refused_host(
    step: &TestStep,
    config: &Value,
    access: &Access,
    target: &Target,
) -> Option<String> {
    if !access.is_confined() {
        return None;
    }
    step.plugin
        .uses(config)
        .into_iter()
        .filter(|u| u.kind == UseKind::Connect)
        .find_map(|u| access.connect(&u.name, Some(target)).err().map(|e| (u.at, e)))
        .map(|(at, refused)| {
            format!(
                "{at}: {refused}; an admin grants it with `--allow {}` or in the server's policy file",
                refused.grant
            )
        })
}

async fn walk(
    test: &Test,
    target: &Target,
    walk: &mut Walk,
    emitter: &Emitter,
    control: &JobControl,
    observer: &dyn JobObserver,
    access: &Access,
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
                return End::Fatal(e.into());
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
            events: &emitter,
            vars: &walk.vars,
            cancel: &step_cancel,
            pause: &control.pause,
            resume: walk.step_state.take(),
            observer,
            clock: emitter.clock(),
            access,
        };
        tracing::debug!(step = %name, target = %target.id, kind = step.plugin.key(), "step started");
        let rendered = if step.plugin.renders_its_own_templates() {
            Ok(step.config.clone())
        } else {
            template::render_config(&step.config, target, &walk.vars)
        };
        let rendered = rendered
            .map_err(|e| format!("cannot render the step's config: {e}"))
            .and_then(|config| match refused_host(step, &config, access, target) {
                Some(refused) => Err(refused),
                None => Ok(config),
            });
        let outcome = match rendered {
            Ok(config) => {
                let running = step.plugin.run(config, &ctx);
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
            Err(why) => Ok(StepOutcome::Failed(why)),
        };
        let written = match outcome {
            Err(error) => {
                tracing::info!(step = %name, target = %target.id, error = %error, "the step could not run");
                return End::Fatal(Fatal::Step {
                    label: step.label.clone(),
                    target: target.id.clone(),
                    error,
                });
            }
            Ok(StepOutcome::Paused(state)) => {
                walk.step_state = Some(state);
                return End::Paused;
            }
            Ok(StepOutcome::Failed(error)) => {
                tracing::debug!(step = %name, target = %target.id, error = %error, "target failed");
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
            return End::Fatal(e.into());
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
    access: &Access,
) -> Result<Attempt, Fatal> {
    if let Some(state) = &state
        && state.version != TEST_RUNNER_STATE_VERSION
    {
        return Err(Fatal::Job(format!(
            "cannot resume: the test runner state is version {}, this stampede reads version {TEST_RUNNER_STATE_VERSION}",
            state.version
        )));
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
            let end = walk(test, target, w, emitter, attempt, observer, access).await;
            if matches!(end, End::Fatal(_)) {
                fatal.cancel();
            }
            end
        }
    }))
    .await;
    let mut ends = ends;
    if let Some(at) = ends.iter().position(|e| matches!(e, End::Fatal(_)))
        && let End::Fatal(fatal) = ends.swap_remove(at)
    {
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
