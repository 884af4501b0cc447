//! `quick`: build load settings, run them with progress and Ctrl-C
//! handling, print the summary, write the JSON, pick the exit code.

use std::path::Path;

use stampede_api::{Status, Summary};
use stampede_core::ExitCode as Code;
use stampede_load::{LoadSettings, LoadStep, RunControl, run_load};
use stampede_metrics::Threshold;

use crate::Failed;
use crate::cli::{LoadArgs, QuickArgs};
use crate::job::write_json;
use crate::progress::Lines;

pub(crate) fn quick(args: QuickArgs) -> Result<Code, Failed> {
    let settings = settings_from_flags(&args.url, &args.load)?;
    let summary = block_on(one_step(&settings, !args.load.no_progress))?;
    print!("{}", stampede_report::render(&args.url, &summary));
    finish_single(&summary, args.load.summary_json.as_deref())
}

fn finish_single(summary: &Summary, json: Option<&Path>) -> Result<Code, Failed> {
    if let Some(path) = json {
        write_json(path, summary)?;
    }
    Ok(match summary.status {
        Status::Passed => Code::Passed,
        Status::Failed => Code::ThresholdsCrossed,
    })
}

fn settings_from_flags(url: &str, flags: &LoadArgs) -> Result<LoadSettings, Failed> {
    let mut headers = std::collections::BTreeMap::new();
    for header in &flags.headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failed::config(format!(
                "-H {header:?}: write headers as 'Name: value', e.g. -H 'Accept: application/json'"
            )));
        };
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    let step = LoadStep {
        url: Some(url.to_string()),
        method: Some(flags.method.clone()),
        headers,
        body: flags.body.clone(),
        status: flags.expect_status.clone(),
        body_contains: flags.body_contains.clone(),
        rate: flags.rate,
        vus: flags
            .vus
            .or(if flags.rate.is_none() { Some(50) } else { None }),
        duration: Some(flags.duration),
        max_in_flight: flags.max_in_flight,
        connections: flags.connections,
        threads: flags.threads,
        http2: flags.http2,
        insecure: flags.insecure,
        allow_errors: flags.allow_errors,
        timeout: Some(flags.timeout),
        ..LoadStep::default()
    };
    let mut settings = step.settings().map_err(|problems| {
        let problems: Vec<String> = problems
            .iter()
            .map(|p| format!("--{}", flag_name(p)))
            .collect();
        Failed::config(problems.join("\n"))
    })?;
    for flag in &flags.thresholds {
        let threshold =
            Threshold::parse_flag(flag).map_err(|e| Failed::config(format!("--threshold: {e}")))?;
        settings.thresholds.push(threshold);
    }
    Ok(settings)
}

/// Turns `max_in_flight: ...` from the step's validation into `max-in-flight: ...`.
fn flag_name(problem: &str) -> String {
    match problem.split_once(':') {
        Some((field, rest)) => format!("{}:{rest}", field.replace('_', "-")),
        None => problem.to_string(),
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime can always be built")
        .block_on(future)
}

/// Runs one load step with progress and Ctrl-C: the first stops sending (calls in flight
/// finish), the second ends the calls in flight too.
async fn one_step(settings: &LoadSettings, progress: bool) -> Result<Summary, Failed> {
    crate::limits::raise_open_files(settings.connections);
    let control = RunControl::default();
    let signals = {
        let control = control.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: calls in flight may finish; press Ctrl-C again to abort them");
                control.stop.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                control.abort.cancel();
            }
        })
    };
    let result = run_load(settings, &control, &mut Lines { enabled: progress }).await;
    signals.abort();
    let result = result.map_err(|e| Failed::other(e.to_string()))?;
    Ok(result.summary())
}
