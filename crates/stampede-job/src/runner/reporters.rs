//! Reporters: after each run, every run reporter judges the run's status, rebuilt from the
//! events; after the last run, every final reporter judges all runs. Each verdict is stored
//! as an event (`RunReport`, `FinalReport`) with a [`Report`] payload.
//!
//! * `target_success`: ConTest's TargetSuccess — per test, the share of targets that passed
//!   every step against an expression (`>=80%`); the run passes when every test does.
//! * `thresholds`: every load step's thresholds held (its failures exit with 99).
//! * `junit`: writes a JUnit XML file: a suite per test, a testcase per target per step.
//! * `json`: writes the run's status as JSON.
//! * `noop`: always passes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stampede_api::Status;
use stampede_api::job::{Report, RunStatus, TestStatus, events};
use stampede_report::junit::{CaseOutcome, JunitCase, JunitReport, JunitSuite, to_xml};
use stampede_store::{EventStore, JobId};

use super::{Emitter, Fatal, job_status};
use crate::access::Refused;
use crate::comparison::Expression;
use crate::descriptor::spec::ReporterSpec;
use crate::descriptor::{FileReporter, Job};
use crate::status::load_summaries;

/// The reporter's name as it appears in reports.
fn name(spec: &ReporterSpec) -> &'static str {
    match spec {
        ReporterSpec::TargetSuccess(_) => "target_success",
        ReporterSpec::Thresholds => "thresholds",
        ReporterSpec::Junit(_) => "junit",
        ReporterSpec::Json(_) => "json",
        ReporterSpec::Noop => "noop",
    }
}

/// The file for `run` (`None`: the whole job): `-runN` before the extension when the job
/// has more than one run; where the job's access puts it, if it lets the job write there.
fn file_for(path: &str, run: Option<u32>, job: &Job) -> Result<PathBuf, Refused> {
    let path = Path::new(path);
    let named = match run {
        Some(run) if job.runs != 1 => {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("report");
            let name = match path.extension().and_then(|e| e.to_str()) {
                Some(ext) => format!("{stem}-run{run}.{ext}"),
                None => format!("{stem}-run{run}"),
            };
            path.with_file_name(name)
        }
        _ => path.to_path_buf(),
    };
    // The name written, checked as a whole.
    job.access.path(&named.to_string_lossy())
}

fn report(spec: &ReporterSpec, success: bool, data: serde_json::Value) -> Report {
    Report {
        reporter: name(spec).to_string(),
        success,
        thresholds: matches!(spec, ReporterSpec::Thresholds) && !success,
        data,
    }
}

/// Whether a target status counts as a success for `target_success`: no error.
fn failures(test: &TestStatus) -> (u64, u64) {
    let mut total = test.targets.len() as u64;
    let mut failed = test.targets.iter().filter(|t| t.error.is_some()).count() as u64;
    if test.acquire_error.is_some() && test.targets.is_empty() {
        total += 1;
        failed += 1;
    }
    (total - failed, total)
}

fn target_success(spec: &ReporterSpec, expr: &str, tests: &[(String, u64, u64)]) -> Report {
    let expression = match Expression::parse(expr) {
        Ok(e) => e,
        Err(e) => return report(spec, false, serde_json::json!([e])),
    };
    let mut lines = Vec::new();
    let mut success = !tests.is_empty();
    for (test, passed, total) in tests {
        match expression.evaluate(*passed, *total) {
            Ok(verdict) if verdict.passed => {
                lines.push(format!(
                    "Test {test} passes success criteria: {}",
                    verdict.text
                ));
            }
            Ok(verdict) => {
                success = false;
                lines.push(format!(
                    "Test {test} does not pass success criteria: {}",
                    verdict.text
                ));
            }
            Err(e) => {
                success = false;
                lines.push(format!("Test {test}: {e}"));
            }
        }
    }
    if tests.is_empty() {
        lines.push("no test ran".to_string());
    }
    report(spec, success, serde_json::json!(lines))
}

/// `1 threshold`, `2 thresholds`.
fn counted(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn thresholds(spec: &ReporterSpec, runs: &[&RunStatus]) -> Report {
    let summaries: Vec<_> = load_summaries(runs.iter().copied())
        .into_iter()
        .map(|s| (format!("{}/{}/{}", s.test, s.step, s.target), s.summary))
        .collect();
    let mut lines = Vec::new();
    let mut count = 0;
    for (name, summary) in &summaries {
        count += summary.thresholds.len();
        for t in summary.thresholds.iter().filter(|t| !t.ok) {
            let value = t
                .value
                .map_or("no value".to_string(), |v| format!("{v:.3}"));
            lines.push(format!("{name}: {} {} crossed ({value})", t.metric, t.expr));
        }
        if let Some(why) = &summary.stopped_early
            && summary.status == Status::Failed
        {
            lines.push(format!("{name}: {why}"));
        }
    }
    let success = summaries.iter().all(|(_, s)| s.status == Status::Passed);
    if success {
        lines.push(match (count, summaries.len()) {
            (_, 0) => "no load step ran: no thresholds to hold".to_string(),
            (0, steps) => format!("no thresholds in {}", counted(steps, "load step")),
            (count, steps) => format!(
                "{} held in {}",
                counted(count, "threshold"),
                counted(steps, "load step")
            ),
        });
    }
    report(spec, success, serde_json::json!(lines))
}

/// The JUnit report of `runs`: a suite per test, a testcase per target per step, and the
/// steps' own cases.
pub fn junit_report(job: &Job, runs: &[&RunStatus]) -> JunitReport {
    let mut suites = Vec::new();
    for run in runs {
        for test in &run.tests {
            let mut cases = Vec::new();
            if let Some(error) = &test.acquire_error {
                cases.push(JunitCase {
                    classname: test.name.clone(),
                    name: "acquire targets".to_string(),
                    time: Duration::ZERO,
                    outcome: CaseOutcome::Failed {
                        message: error.clone(),
                        kind: events::TARGET_ACQUIRE_ERR.to_string(),
                    },
                    output: None,
                });
            }
            let layout = job.tests.iter().find(|t| t.name == test.name);
            for step in &test.steps {
                let plugin = layout
                    .and_then(|t| t.steps.iter().find(|s| s.label == step.label))
                    .map(|s| &s.plugin);
                for target in &test.targets {
                    let in_step = step.targets.iter().find(|t| t.target == target.target);
                    let (time, outcome) = match in_step {
                        None => (
                            Duration::ZERO,
                            CaseOutcome::Skipped {
                                message: match &target.error {
                                    Some(error) => {
                                        format!("not reached: the target failed earlier: {error}")
                                    }
                                    None => "not reached".to_string(),
                                },
                            },
                        ),
                        Some(status) => {
                            let micros = match (status.in_at_us, status.out_at_us) {
                                (Some(a), Some(b)) => u64::try_from(b - a).unwrap_or(0),
                                _ => 0,
                            };
                            let outcome = match (&status.error, status.out_at_us) {
                                (Some(error), _) => CaseOutcome::Failed {
                                    message: error.clone(),
                                    kind: events::TARGET_ERR.to_string(),
                                },
                                (None, None) => CaseOutcome::Skipped {
                                    message: "did not finish (paused or cancelled)".to_string(),
                                },
                                (None, Some(_)) => CaseOutcome::Passed,
                            };
                            (Duration::from_micros(micros), outcome)
                        }
                    };
                    cases.push(JunitCase {
                        classname: format!("{}.{}", test.name, target.target),
                        name: step.label.clone(),
                        time,
                        outcome,
                        output: in_step
                            .zip(plugin)
                            .and_then(|(status, plugin)| plugin.junit_output(status)),
                    });
                }
                if let Some(plugin) = plugin {
                    cases.extend(plugin.junit_cases(&test.name, step));
                }
            }
            let suite = if runs.len() > 1 {
                format!("run {} / {}", run.run, test.name)
            } else {
                test.name.clone()
            };
            suites.push(JunitSuite { name: suite, cases });
        }
    }
    JunitReport {
        name: job.name.clone(),
        suites,
    }
}

fn write(spec: &ReporterSpec, path: &Path, text: &str) -> Report {
    let written = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, text));
    match written {
        Ok(()) => report(
            spec,
            true,
            serde_json::json!({"path": path.display().to_string()}),
        ),
        Err(e) => report(
            spec,
            false,
            serde_json::json!([format!("cannot write {}: {e}", path.display())]),
        ),
    }
}

fn judge(spec: &ReporterSpec, job: &Job, runs: &[&RunStatus], run: Option<u32>) -> Report {
    match spec {
        ReporterSpec::Noop => report(
            spec,
            true,
            serde_json::json!(if run.is_some() {
                "I did nothing"
            } else {
                "I did nothing at the end, all good"
            }),
        ),
        ReporterSpec::TargetSuccess(expr) => {
            // Per test name, summed over the runs judged.
            let mut tests: Vec<(String, u64, u64)> = Vec::new();
            for test in runs.iter().flat_map(|r| &r.tests) {
                let (passed, total) = failures(test);
                match tests.iter_mut().find(|(name, ..)| *name == test.name) {
                    Some(entry) => {
                        entry.1 += passed;
                        entry.2 += total;
                    }
                    None => tests.push((test.name.clone(), passed, total)),
                }
            }
            target_success(spec, expr, &tests)
        }
        ReporterSpec::Thresholds => thresholds(spec, runs),
        ReporterSpec::Junit(FileReporter { path }) => {
            match (file_for(path, run, job), to_xml(&junit_report(job, runs))) {
                (Ok(path), Ok(xml)) => write(spec, &path, &xml),
                (Err(e), _) => report(spec, false, serde_json::json!([e.to_string()])),
                (_, Err(e)) => report(spec, false, serde_json::json!([e.to_string()])),
            }
        }
        ReporterSpec::Json(FileReporter { path }) => match file_for(path, run, job) {
            Ok(path) => {
                let text = serde_json::to_string_pretty(runs).expect("a status always serializes");
                write(spec, &path, &(text + "\n"))
            }
            Err(e) => report(spec, false, serde_json::json!([e.to_string()])),
        },
    }
}

/// Stores the verdicts as events; they are shown once, in words, with the job's status.
async fn store_reports(reports: Vec<Report>, name: &str, emitter: &Emitter) -> Result<(), Fatal> {
    for report in reports {
        emitter
            .emit(
                name,
                Some(serde_json::to_value(&report).expect("serializes")),
            )
            .await?;
    }
    Ok(())
}

/// Judges run `run` with every run reporter and stores the verdicts.
pub(super) async fn run_reports(
    store: &Arc<dyn EventStore>,
    job_id: JobId,
    job: &Job,
    run: u32,
    emitter: &Emitter,
) -> Result<(), Fatal> {
    if job.run_reporters.is_empty() {
        return Ok(());
    }
    let status = job_status(store, job_id, job).await?;
    let Some(this) = status.runs.iter().find(|r| r.run == run) else {
        return Err(Fatal::Job(format!(
            "run {run} has no status: its events are missing"
        )));
    };
    let reports = job
        .run_reporters
        .iter()
        .map(|spec| judge(spec, job, &[this], Some(run)))
        .collect();
    store_reports(reports, events::RUN_REPORT, emitter).await
}

/// Judges the whole job with every final reporter and stores the verdicts.
pub(super) async fn final_reports(
    store: &Arc<dyn EventStore>,
    job_id: JobId,
    job: &Job,
    emitter: &Emitter,
) -> Result<(), Fatal> {
    if job.final_reporters.is_empty() {
        return Ok(());
    }
    let status = job_status(store, job_id, job).await?;
    let runs: Vec<&RunStatus> = status.runs.iter().collect();
    let reports = job
        .final_reporters
        .iter()
        .map(|spec| judge(spec, job, &runs, None))
        .collect();
    store_reports(reports, events::FINAL_REPORT, emitter).await
}
