//! The step's results: the `ScaleResults` payload built from the harness's records and the
//! runners' marks, the message a failed step gives, and coder's text report rebuilt from
//! a recorded payload (so `stampede run`, the status and a resumed job print the same).

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::{Duration, UNIX_EPOCH};

use crate::{Latency, LatencyResults, LatencyRun, Layout, Results, RunFailure};
use stampede_api::job::{RunStatus, StepStatus, events};
use stampede_api::scale::{ScaleLatency, ScaleResults, ScaleRun};
use stampede_report::junit::{CaseOutcome, JunitCase};

use super::config::{OUTPUT_FORMATS, ScaleConfig};
use super::runner::{Plan, SharedState};
use stampede_job::template::Template;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn from_ms(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

fn layout(config: &ScaleConfig) -> Layout {
    Layout {
        title: config
            .report
            .title
            .clone()
            .unwrap_or_else(|| "Scale Test Results".into()),
        entity: config
            .report
            .entity
            .clone()
            .unwrap_or_else(|| "runner".into()),
        latencies: config
            .latencies
            .iter()
            .map(|l| {
                let heading = l
                    .heading
                    .clone()
                    .unwrap_or_else(|| format!("{} ({} → {})", l.name, l.from, l.to));
                Latency::new(&l.name, &heading)
            })
            .collect(),
    }
}

/// The payload of the `ScaleResults` event.
pub(crate) fn payload(
    config: &ScaleConfig,
    plan: &Plan,
    test_name: &str,
    results: &Results,
    states: &[SharedState],
    cleanup_errors: Vec<String>,
) -> ScaleResults {
    let layout = layout(config);
    let name_template = config
        .report
        .name
        .as_deref()
        .and_then(|t| Template::parse(t).ok());
    let mut runs = Vec::with_capacity(states.len());
    let mut latency_runs = Vec::with_capacity(states.len());
    for (i, state) in states.iter().enumerate() {
        let id = i.to_string();
        let full_id = format!("{test_name}/{id}");
        let state = state.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let name = name_template
            .as_ref()
            .and_then(|t| t.render(&plan.context(&state.saved)).ok())
            .unwrap_or_else(|| id.clone());
        let mut latencies = BTreeMap::new();
        for spec in &config.latencies {
            let (Some(from), Some(to)) = (state.marks.get(&spec.from), state.marks.get(&spec.to))
            else {
                continue;
            };
            if let Ok(latency) = to.duration_since(*from) {
                latencies.insert(spec.name.clone(), latency);
            }
        }
        // The harness has a result for every registered run (`NotStarted` if it never ran).
        let result = results.runs.get(&full_id);
        let error = match result {
            Some(r) => r.error.as_ref().map(ToString::to_string),
            None => Some(RunFailure::NotStarted.to_string()),
        };
        let failed = error.is_some();
        latency_runs.push(LatencyRun {
            id: id.clone(),
            name: name.clone(),
            error: error.clone(),
            latencies: latencies.clone(),
        });
        runs.push(ScaleRun {
            full_id,
            id,
            name,
            started_at_us: result.and_then(|r| r.started_at).and_then(|t| {
                let since = t.duration_since(UNIX_EPOCH).ok()?;
                i64::try_from(since.as_micros()).ok()
            }),
            duration_ms: result.map_or(0.0, |r| ms(r.duration)),
            phase: if failed { state.phase } else { None },
            error,
            latencies_ms: latencies.iter().map(|(k, v)| (k.clone(), ms(*v))).collect(),
            logs: match result {
                Some(r) if failed => r.logs.clone(),
                _ => String::new(),
            },
        });
    }
    let report = LatencyResults::new(layout.clone(), latency_runs);
    let latencies = config
        .latencies
        .iter()
        .map(|spec| {
            let p = report
                .percentiles
                .get(&spec.name)
                .copied()
                .unwrap_or_default();
            let count = runs
                .iter()
                .filter(|r| r.error.is_none() && r.latencies_ms.contains_key(&spec.name))
                .count();
            let heading = layout
                .latencies
                .iter()
                .find(|l| l.key == spec.name)
                .map(|l| l.heading.clone())
                .unwrap_or_default();
            ScaleLatency {
                key: spec.name.clone(),
                heading,
                from: spec.from.clone(),
                to: spec.to.clone(),
                count,
                p50_ms: ms(p.p50),
                p95_ms: ms(p.p95),
                p99_ms: ms(p.p99),
            }
        })
        .collect();
    ScaleResults {
        test: test_name.to_owned(),
        title: layout.title,
        entity: layout.entity,
        total_runs: report.total_runs,
        successful_runs: report.successful_runs,
        failed_runs: report.failed_runs,
        elapsed_ms: ms(results.elapsed),
        latencies,
        runs,
        cleanup_errors,
    }
}

/// Why the step fails its target, naming up to `named` failed runs; `None` if every run
/// and cleanup passed.
pub(crate) fn failure(results: &ScaleResults, named: usize) -> Option<String> {
    let mut parts = Vec::new();
    if results.failed_runs > 0 {
        let failed: Vec<&ScaleRun> = results.runs.iter().filter(|r| r.error.is_some()).collect();
        let mut text = format!(
            "{} of {} runs failed: ",
            results.failed_runs, results.total_runs
        );
        let listed: Vec<String> = failed
            .iter()
            .take(named)
            .map(|r| {
                format!(
                    "{} ({}): {}",
                    r.full_id,
                    r.name,
                    r.error.as_deref().unwrap_or("")
                )
            })
            .collect();
        text.push_str(&listed.join("; "));
        if failed.len() > named {
            text.push_str(&format!("; and {} more", failed.len() - named));
        }
        parts.push(text);
    }
    if !results.cleanup_errors.is_empty() {
        parts.push(format!(
            "{} cleanup(s) failed: {}",
            results.cleanup_errors.len(),
            results.cleanup_errors.first().map_or("", String::as_str)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Coder's latency report of a recorded payload, plus failed cleanups if any.
pub(crate) fn text(results: &ScaleResults) -> String {
    let mut out = latency_results(results).to_text();
    if !results.cleanup_errors.is_empty() {
        out.push_str("\nFailed Cleanups\n---------------\n");
        for error in &results.cleanup_errors {
            out.push_str(&format!("- {error}\n"));
        }
    }
    out
}

/// Coder's latency results rebuilt from a recorded payload.
fn latency_results(results: &ScaleResults) -> LatencyResults {
    let layout = Layout {
        title: results.title.clone(),
        entity: results.entity.clone(),
        latencies: results
            .latencies
            .iter()
            .map(|l| Latency::new(&l.key, &l.heading))
            .collect(),
    };
    let runs = results
        .runs
        .iter()
        .map(|r| LatencyRun {
            id: r.id.clone(),
            name: r.name.clone(),
            error: r.error.clone(),
            latencies: r
                .latencies_ms
                .iter()
                .map(|(k, v)| (k.clone(), from_ms(*v)))
                .collect(),
        })
        .collect();
    LatencyResults::new(layout, runs)
}

/// Writes the reports `outputs` asks for (`FORMAT:PATH`, coder's `--output`): the latency
/// report as text or as JSON with the latencies' names (`<name>_p50_ms`, ...), or the
/// harness's results (every run with its log) as text or JSON.
pub(crate) fn write_outputs(
    results: &ScaleResults,
    harness: &Results,
    outputs: &[String],
    access: &stampede_job::Access,
) -> Result<(), String> {
    for output in outputs {
        let formats = OUTPUT_FORMATS.join(", ");
        let (format, path) = output.split_once(':').ok_or_else(|| {
            format!("output {output:?}: write FORMAT:PATH, FORMAT one of {formats}")
        })?;
        let content = match format {
            "text" => text(results),
            "json" => latency_results(results).to_json_pretty(),
            "harness-text" => harness.to_text(),
            "harness-json" => harness.to_json_pretty(),
            _ => return Err(format!("output {output:?}: the formats are {formats}")),
        };
        let file = access
            .path(path)
            .map_err(|e| format!("output {output:?}: {e}"))?;
        std::fs::write(&file, content).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// A scale step's results on one target, as its `ScaleResults` event recorded them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleStepResults {
    /// The test.
    pub test: String,
    /// The step's label.
    pub step: String,
    /// The target.
    pub target: String,
    /// What the step recorded.
    pub results: ScaleResults,
}

impl ScaleStepResults {
    /// Coder's text report of these results.
    pub fn text(&self) -> String {
        text(&self.results)
    }
}

/// Every scale step's results in `runs`, in run, test, step and target order. A payload
/// that does not decode is skipped (the event is still in the status).
pub fn scale_results<'a>(runs: impl IntoIterator<Item = &'a RunStatus>) -> Vec<ScaleStepResults> {
    stampede_job::status::step_payloads(runs, events::SCALE_RESULTS)
        .into_iter()
        .map(|(test, step, target, results)| ScaleStepResults {
            test,
            step,
            target,
            results,
        })
        .collect()
}

/// One JUnit testcase per run of each scale step's results in `step`: classname
/// `<test>.<step>.<target>`, name the run's full id, a failure carrying its error and log.
pub(crate) fn junit_cases(test: &str, step: &StepStatus) -> Vec<JunitCase> {
    let mut cases = Vec::new();
    for target in &step.targets {
        let payloads =
            stampede_job::status::target_payloads::<ScaleResults>(target, events::SCALE_RESULTS);
        for results in payloads {
            for run in &results.runs {
                let outcome = match &run.error {
                    None => CaseOutcome::Passed,
                    Some(error) => CaseOutcome::Failed {
                        message: error.clone(),
                        kind: "ScaleRun".to_owned(),
                    },
                };
                cases.push(JunitCase {
                    classname: format!("{test}.{}.{}", step.label, target.target),
                    name: run.full_id.clone(),
                    time: from_ms(run.duration_ms),
                    outcome,
                    output: (!run.logs.is_empty()).then(|| run.logs.clone()),
                });
            }
        }
    }
    cases
}
