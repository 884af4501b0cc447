//! `run`, `demo`, `validate` and `schema`: a job descriptor through the job runner, with a store,
//! signals (pause with a store, cancel without), the summary, reports and the exit code.

use std::path::Path;
use std::sync::Arc;

use stampede_api::job::{JobState, JobStatus, PausePayload};
use stampede_api::{RunSummary, SUMMARY_SCHEMA, Status, StepSummary, Summary};
use stampede_core::ExitCode as Code;
use stampede_core::{Clock, SystemClock};
use stampede_job::policy::{self, Policy};
use stampede_job::runner::{self, JobControl, JobObserver, JobOutcome};
use stampede_job::{FileReporterSpec, Job, ReporterSpec};
use stampede_metrics::Observer;

use crate::steps::registry;
use stampede_store::EventStore;
use tokio::signal::unix::{SignalKind, signal};

use crate::Failed;
use crate::cli::{ConnArgs, DemoArgs, RunArgs, ValidateArgs};
use crate::out_cloud::{self, CloudOut};
use crate::progress::Lines;

/// Prints progress and load summaries as the job goes; with `--out cloud`, also streams
/// every load step's snapshots to the server.
struct Terminal<'a> {
    progress: bool,
    cloud: Option<&'a CloudOut>,
}

impl JobObserver for Terminal<'_> {
    fn load(&self, step: &str, target: &str) -> Box<dyn Observer> {
        eprintln!("step {step} on {target}");
        let lines = Box::new(Lines {
            enabled: self.progress,
        });
        match self.cloud {
            Some(cloud) => Box::new(cloud.observe(step, target, lines)),
            None => lines,
        }
    }

    fn load_done(&self, step: &str, target: &str, summary: &Summary) {
        print!(
            "{}",
            stampede_report::render(&format!("{step} on {target}"), summary)
        );
    }

    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

pub(crate) fn read_job(file: &Path) -> Result<(Job, String), Failed> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failed::config(format!("cannot read the job file {path}: {e}")))?;
    // Files the job names (CSV targets, ConTest's URI steps) are found from the job file's
    // directory, made absolute so that a resumed job finds them from anywhere.
    let dir = file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(dir)
        .map_err(|e| Failed::other(format!("cannot resolve the directory of {path}: {e}")))?;
    let job =
        Job::parse(&text, &path, &base, &registry()).map_err(|e| Failed::config(e.to_string()))?;
    Ok((job, text))
}

pub(crate) fn validate(args: ValidateArgs) -> Result<Code, Failed> {
    let (job, text) = read_job(&args.file)?;
    if let Some(file) = &args.server_policy {
        server_check(&args.file, &text, file, &args.project)?;
    }
    let steps = job.tests.iter().map(|t| t.steps.len()).sum::<usize>();
    println!(
        "{}: valid: job {:?}, {} test{}, {steps} step{}",
        args.file.display(),
        job.name,
        job.tests.len(),
        if job.tests.len() == 1 { "" } else { "s" },
        if steps == 1 { "" } else { "s" },
    );
    Ok(Code::Passed)
}

/// Checks `text` as a job server with the policy in `policy_file` would for `project`.
fn server_check(file: &Path, text: &str, policy_file: &Path, project: &str) -> Result<(), Failed> {
    let path = file.display().to_string();
    let policy = Policy::load(policy_file).map_err(Failed::config)?;
    let files = policy.grants(project).access(None, &Default::default());
    // As the server reads it: files only where the project may read them.
    let job = Job::parse_in(text, &path, &files, &registry())
        .map_err(|e| Failed::config(format!("on a server: {e}")))?;
    let refusals = policy.check(&job, project);
    if refusals.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "{path}: a server with the policy {} refuses it for project {project:?} (403), {} problem{}:",
        policy_file.display(),
        refusals.len(),
        if refusals.len() == 1 { "" } else { "s" }
    );
    for refusal in &refusals {
        message.push_str(&format!("\n  {refusal}"));
    }
    message.push_str(&format!("\n{}", policy::how_to_allow(project, &refusals)));
    Err(Failed::config(message))
}

pub(crate) fn schema() -> Result<Code, Failed> {
    println!("{}", stampede_job::job_schema(&registry()));
    Ok(Code::Passed)
}

/// The latest pause payload of a paused job.
async fn pause_payload(store: &Arc<dyn EventStore>, id: u64) -> Result<PausePayload, Failed> {
    runner::latest_pause(store, id)
        .await
        .map_err(|e| Failed::other(e.to_string()))?
        .ok_or_else(|| {
            Failed::config(format!(
                "job {id} was never paused: there is nothing to resume"
            ))
        })?
        .map_err(Failed::other)
}

/// Signals: the first SIGINT or SIGTERM pauses the job when it can be resumed (a store was
/// given) and cancels it otherwise; the second cancels; a third ends the process at once.
fn watch_signals(
    control: &JobControl,
    store: &Arc<dyn EventStore>,
    id: u64,
    pausable: bool,
) -> tokio::task::JoinHandle<()> {
    let control = control.clone();
    let store = store.clone();
    tokio::task::spawn_local(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            eprintln!("cannot watch for signals: Ctrl-C ends the process without a summary");
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 && pausable {
                eprintln!(
                    "pausing job {id}: steps in flight finish, sleeps stop; signal again to cancel"
                );
                control.pause.cancel();
            } else if !control.cancel.is_cancelled() {
                eprintln!("cancelling job {id}; signal again to quit at once");
                cancel(&control, &store, id).await;
            } else {
                eprintln!("quitting: job {id} is left as the store last recorded it");
                std::process::exit(i32::from(Code::Interrupted.code()));
            }
        }
    })
}

/// Cancels the job, recorded before the runner sees it, so that `cancelled` comes after
/// `cancelling`; a store that does not answer must not hold the cancel up.
async fn cancel(control: &JobControl, store: &Arc<dyn EventStore>, id: u64) {
    let recorded = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        runner::record_cancelling(store, &SystemClock::shared(), id),
    )
    .await;
    if !matches!(recorded, Ok(Ok(()))) {
        eprintln!("cannot record the cancel in the store; cancelling anyway");
    }
    control.cancel.cancel();
}

pub(crate) fn run(args: RunArgs) -> Result<Code, Failed> {
    block_on_local(run_async(args, None))
}

fn block_on_local(
    future: impl std::future::Future<Output = Result<Code, Failed>>,
) -> Result<Code, Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::other(format!("cannot start the runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, future)
}

/// The job `demo` runs against the built-in server at `url`: a check, then the load.
fn demo_descriptor(url: &str, args: &DemoArgs) -> String {
    format!(
        r#"name: demo
tests:
  - name: demo
    steps:
      - name: up
        http: {{ url: "{url}/status/200" }}
      - name: load
        load:
          url: "{url}/"
          rate: {rate}
          duration: {duration}ms
          thresholds:
            latency: ["p(99)<100"]
            errors: ["rate<0.01"]
"#,
        rate = args.rate,
        duration = args.duration.as_millis(),
    )
}

/// `demo`: the built-in server on a free loopback port and a job against it, run by the job
/// runner with its events in a store (a SQLite file by default), as `run` would.
pub(crate) fn demo(args: DemoArgs) -> Result<Code, Failed> {
    let server = stampede_sut::Server::start(stampede_sut::Config::default())
        .map_err(|e| Failed::other(format!("cannot start the built-in server: {e}")))?;
    eprintln!("built-in server listening on {}", server.url());
    let text = demo_descriptor(&server.url(), &args);
    let job = Job::parse(&text, "demo", Path::new("."), &registry())
        .map_err(|e| Failed::config(format!("--rate / --duration: {e}")))?;
    let run = RunArgs {
        file: None,
        store: Some(args.store),
        resume: None,
        summary_json: args.summary_json,
        junit: None,
        no_progress: args.no_progress,
        out: None,
        conn: ConnArgs::default(),
    };
    let code = block_on_local(run_async(run, Some((job, text))));
    server.shutdown();
    code
}

/// Runs a job file, a given job (`demo`), or a paused job from the store.
async fn run_async(args: RunArgs, given: Option<(Job, String)>) -> Result<Code, Failed> {
    // A given job's server ends with this process: resuming it later would find nothing.
    let resumable = given.is_none();
    let url = args.store.clone().unwrap_or_else(|| "memory:".to_string());
    let store = stampede_store::open(&url)
        .await
        .map_err(|e| Failed::config(format!("--store {url}: {e}")))?;
    let (id, mut job, resume) = match (args.resume, args.file.as_deref(), given) {
        (Some(id), _, _) => {
            if args.store.is_none() {
                return Err(Failed::config(
                    "--resume needs the store the job was paused in: add --store sqlite://PATH or --store postgres://...",
                ));
            }
            let record = store
                .job(id)
                .await
                .map_err(|e| Failed::other(e.to_string()))?
                .ok_or_else(|| Failed::config(format!("job {id} is not in the store {url}")))?;
            if record.state != JobState::Paused.name() {
                return Err(Failed::config(format!(
                    "job {id} is {}, not paused: only a paused job can be resumed",
                    record.state
                )));
            }
            let job = Job::from_extended(&record.extended_descriptor, &registry())
                .map_err(|e| Failed::other(format!("job {id}: {e}")))?;
            let payload = pause_payload(&store, id).await?;
            eprintln!("resuming job {id} ({}) at run {}", job.name, payload.run);
            (id, job, Some(payload))
        }
        (None, file, given) => {
            let (job, text) = match (given, file) {
                (Some(given), _) => given,
                (None, Some(file)) => read_job(file)?,
                (None, None) => {
                    return Err(Failed::config(
                        "give a job file (stampede run FILE) or a job to resume (--store URL --resume ID)",
                    ));
                }
            };
            let requestor = std::env::var("USER").unwrap_or_else(|_| "stampede".into());
            let id = runner::submit(&store, &SystemClock, &job, &text, &requestor, "local")
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            (id, job, None)
        }
    };
    if let Some(path) = &args.junit {
        job.run_reporters
            .push(ReporterSpec::Junit(FileReporterSpec {
                path: path.display().to_string(),
            }));
    }
    let cloud = match args.out.as_deref() {
        None => None,
        Some(out) => {
            let name = match out.split_once('=') {
                None if out == "cloud" => job.name.clone(),
                Some(("cloud", name)) if !name.trim().is_empty() => name.trim().to_string(),
                _ => {
                    return Err(Failed::config(format!(
                        "--out {out:?}: the one output is `cloud` (or `cloud=NAME` to name the test run)"
                    )));
                }
            };
            let client = crate::cloud::job_client(&args.conn, &job)?;
            Some(CloudOut::start(client, &out_cloud::announce(&job, name)).await?)
        }
    };
    let control = JobControl::default();
    // Only a job in a store that outlives this process can be resumed.
    let pausable = resumable && !url.starts_with("memory:");
    let signals = watch_signals(&control, &store, id, pausable);
    let server_stop = cloud.as_ref().map(|cloud| {
        let (asked, control, store) = (cloud.stop_asked.clone(), control.clone(), store.clone());
        tokio::task::spawn_local(async move {
            asked.cancelled().await;
            cancel(&control, &store, id).await;
        })
    });
    let terminal = Terminal {
        progress: !args.no_progress,
        cloud: cloud.as_ref(),
    };
    let clock: Arc<dyn Clock> = SystemClock::shared();
    let outcome =
        runner::run_job(store.clone(), clock, id, &job, resume, &control, &terminal).await;
    // A signal from now on is not about the job any more.
    signals.abort();
    if let Some(task) = server_stop {
        task.abort();
    }
    let outcome = outcome.map_err(|e| Failed::other(e.to_string()))?;
    let status = runner::job_status(&store, id, &job)
        .await
        .map_err(|e| Failed::other(e.to_string()))?;
    print!("{}", render_status(&status));
    let code = stampede_job::status::exit_code(outcome.state(), &status);
    match &outcome {
        JobOutcome::Paused(_) => {
            eprintln!("job {id} paused; resume it with: stampede run --store {url} --resume {id}")
        }
        JobOutcome::Failed(why) => eprintln!("error: {why}"),
        JobOutcome::Cancelled => eprintln!("job {id} cancelled"),
        JobOutcome::Completed => {}
    }
    if !url.starts_with("memory:") {
        eprintln!("job {id} and its events are kept in {url}");
    }
    if let Some(path) = &args.summary_json {
        let summary = RunSummary {
            schema: SUMMARY_SCHEMA.into(),
            status: if code == Code::Passed {
                Status::Passed
            } else {
                Status::Failed
            },
            name: job.name.clone(),
            job_id: Some(id),
            state: Some(status.state),
            steps: load_steps(&status),
            skipped: skipped(&status),
            runs: status.runs.clone(),
            final_reports: status.final_reports.clone(),
            robustness: stampede_robust::step::robustness_summaries(&status.runs),
        };
        write_json(path, &summary)?;
    }
    // Last: the local summary is written whatever the server does.
    if let Some(cloud) = cloud {
        cloud.finish(&outcome, &status, code).await?;
    }
    Ok(code)
}

/// Every load step's summary, from the `LoadSummary` events.
fn load_steps(status: &JobStatus) -> Vec<StepSummary> {
    stampede_job::status::load_summaries(&status.runs)
        .into_iter()
        .map(|s| StepSummary {
            name: format!("{}/{}", s.test, s.step),
            target: Some(s.target),
            summary: s.summary,
        })
        .collect()
}

/// Steps some acquired target never entered, as `test/step`.
fn skipped(status: &JobStatus) -> Vec<String> {
    let mut skipped = Vec::new();
    for run in &status.runs {
        for test in &run.tests {
            for step in &test.steps {
                let name = format!("{}/{}", test.name, step.label);
                if step.targets.len() < test.targets.len() && !skipped.contains(&name) {
                    skipped.push(name);
                }
            }
        }
    }
    skipped
}

/// The job's status as text: each robustness step's figures, then per run, each test's
/// targets and where they ended, then the reporters' verdicts.
pub(crate) fn render_status(status: &JobStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Each robustness step's figures and failure reports first: the status lines after
    // them repeat only the verdicts.
    for r in stampede_robust::step::robustness_summaries(&status.runs) {
        let title = format!("{} on {}", r.name, r.target);
        out.push_str(&stampede_report::render_robustness(&title, &r.stats));
    }
    let _ = writeln!(
        out,
        "\njob {} ({}): {}",
        status.job_id,
        status.name,
        status.state.name()
    );
    if let Some(error) = &status.error {
        let _ = writeln!(out, "  error: {error}");
    }
    for run in &status.runs {
        let _ = writeln!(out, "run {}", run.run);
        for test in &run.tests {
            let passed = test.targets.iter().filter(|t| t.passed()).count();
            let _ = writeln!(
                out,
                "  test {} (attempt {}): {passed}/{} targets passed",
                test.name,
                test.attempt + 1,
                test.targets.len()
            );
            if let Some(error) = &test.acquire_error {
                let _ = writeln!(out, "    cannot acquire targets: {error}");
            }
            for target in &test.targets {
                let at = target.step.as_deref().unwrap_or("-");
                match &target.error {
                    Some(error) => {
                        let _ = writeln!(out, "    ✗ {} at {at}: {error}", target.target);
                    }
                    None if target.out_at_us.is_some() => {
                        let _ = writeln!(out, "    ✓ {} (last step {at})", target.target);
                    }
                    None => {
                        let _ = writeln!(out, "    … {} (in {at})", target.target);
                    }
                }
            }
        }
        for scale in stampede_scale::step::scale_results([run]) {
            let _ = writeln!(
                out,
                "\n{}/{} on {}:\n{}",
                scale.test,
                scale.step,
                scale.target,
                scale.text()
            );
        }
        for report in &run.reports {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if report.success { "✓" } else { "✗" },
                report.reporter,
                report_text(&report.data)
            );
        }
    }
    for report in &status.final_reports {
        let _ = writeln!(
            out,
            "final {} {}: {}",
            if report.success { "✓" } else { "✗" },
            report.reporter,
            report_text(&report.data)
        );
    }
    out
}

fn report_text(data: &serde_json::Value) -> String {
    match data {
        serde_json::Value::String(s) => s.clone(),
        // A file reporter's verdict: where it wrote.
        serde_json::Value::Object(fields) if fields.len() == 1 && fields.contains_key("path") => {
            format!("wrote {}", report_text(&fields["path"]))
        }
        serde_json::Value::Array(lines) => lines
            .iter()
            .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Failed> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failed::other(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| {
        Failed::other(format!(
            "cannot write the summary to {}: {e}",
            path.display()
        ))
    })
}
