//! Measures rebuilding a job's status from the event store: one job with about a million
//! events (targets entering and leaving steps and printing lines), appended in batches,
//! then `events()` + [`rebuild`] timed a few times. Prints one JSON object per line: one
//! `append` line per store, one `status` line per run, then a `summary` line with medians.
//!
//! Run it with
//! `cargo run --release -p stampede-job --example status_bench -- --sqlite PATH [--postgres URL]`
//! (`--events N`, default 1,000,000; `--batch B`, default 1,000; `--runs R`, default 3).
//! Each store gets a new job; give a fresh file (created if missing) and an empty database
//! or search-path schema for figures that do not depend on what was there before.
//! `bench/store/run.sh status` runs it and writes the results down.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use stampede_api::job::{JobState, events as names};
use stampede_job::status::{TestLayout, rebuild};
use stampede_store::{EventQuery, EventStore, NewEvent, NewJob};

/// What to measure, from the command line.
struct Args {
    sqlite: Option<String>,
    postgres: Option<String>,
    events: usize,
    batch: usize,
    runs: usize,
}

const USAGE: &str = "usage: status_bench [--sqlite PATH] [--postgres URL] [--events N] \
                     [--batch B] [--runs R]";

/// Targets of the benchmark's test, and its steps.
const TARGETS: usize = 1000;
const STEPS: [&str; 4] = ["provision", "exec", "load", "check"];
/// One target in this many fails each step after the first.
const FAIL_EVERY: usize = 97;

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sqlite: None,
        postgres: None,
        events: 1_000_000,
        batch: 1000,
        runs: 3,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--sqlite" => args.sqlite = Some(value.clone()),
            "--postgres" => args.postgres = Some(value.clone()),
            "--events" => args.events = number()?,
            "--batch" => args.batch = number()?.max(1),
            "--runs" => args.runs = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        }
    }
    if args.sqlite.is_none() && args.postgres.is_none() {
        return Err(format!("give --sqlite, --postgres or both; {USAGE}"));
    }
    Ok(args)
}

/// The events a job runner writes for one run of one test over [`TARGETS`] targets: a
/// failed first attempt (acquiring failed), then each target through [`STEPS`] printing
/// lines, a few failing, all interleaved as parallel targets are; `total` in all (or the
/// least such a job can have).
fn job_events(job_id: u64, total: usize) -> Vec<NewEvent> {
    let fails = |s: usize, t: usize| s > 0 && (t + s).is_multiple_of(FAIL_EVERY);
    // Targets in each step: those that failed no earlier step.
    let alive: Vec<usize> = (0..STEPS.len())
        .map(|s| {
            (0..TARGETS)
                .filter(|&t| (0..s).all(|e| !fails(e, t)))
                .count()
        })
        .collect();
    let in_steps: usize = alive.iter().sum();
    // Job and run events, acquisitions and releases, TargetIn and TargetOut/TargetErr.
    let routing = 6 + 2 * TARGETS + 2 * in_steps;
    let lines = total.saturating_sub(routing);
    let (per_target, mut extra) = (lines / in_steps, lines % in_steps);

    let mut events = Vec::with_capacity(routing + lines);
    let mut at = 1_800_000_000_000_000_i64;
    let mut push = |event: NewEvent| {
        at += 7;
        events.push(NewEvent {
            job_id,
            emitted_at_us: at,
            ..event
        });
    };
    let job = |name: &str, payload: Option<&str>| NewEvent {
        name: name.to_owned(),
        payload: payload.map(str::to_owned),
        ..NewEvent::default()
    };
    let test = |attempt: u32, step: Option<&str>, target: Option<usize>, name: &str| NewEvent {
        run: Some(1),
        test: Some("fleet".to_owned()),
        attempt: Some(attempt),
        step: step.map(str::to_owned),
        target: target.map(|t| format!("host-{t:04}.lab.example")),
        name: name.to_owned(),
        ..NewEvent::default()
    };
    push(job(JobState::Started.event(), None));
    push(NewEvent {
        run: Some(1),
        ..job(names::RUN_STARTED, Some(r#"{"RunID":1}"#))
    });
    push(NewEvent {
        payload: Some(r#"{"Error":"inventory busy"}"#.to_owned()),
        ..test(0, None, None, names::TARGET_ACQUIRE_ERR)
    });
    for t in 0..TARGETS {
        push(test(1, None, Some(t), names::TARGET_ACQUIRED));
    }
    let mut running: Vec<usize> = (0..TARGETS).collect();
    for (s, step) in STEPS.iter().enumerate() {
        for &t in &running {
            push(test(1, Some(step), Some(t), names::TARGET_IN));
        }
        let here = per_target + usize::from(extra > 0);
        for line in 0..here {
            for (i, &t) in running.iter().enumerate() {
                if line == per_target && i >= extra {
                    break;
                }
                push(NewEvent {
                    payload: Some(format!(
                        r#"{{"Msg":"[{step}] line {line}: 200 OK in {} ms"}}"#,
                        (t * 31 + line) % 900
                    )),
                    ..test(1, Some(step), Some(t), names::CMD_STDOUT)
                });
            }
        }
        extra -= extra.min(running.len());
        for &t in &running {
            if fails(s, t) {
                push(NewEvent {
                    payload: Some(r#"{"Error":"exit status 1"}"#.to_owned()),
                    ..test(1, Some(step), Some(t), names::TARGET_ERR)
                });
            } else {
                push(test(1, Some(step), Some(t), names::TARGET_OUT));
            }
        }
        running.retain(|&t| !fails(s, t));
    }
    for t in 0..TARGETS {
        push(test(1, None, Some(t), names::TARGET_RELEASED));
    }
    let report = r#"{"reporter":"TargetSuccess","success":true,"data":{"passed":960}}"#;
    push(NewEvent {
        run: Some(1),
        ..job(names::RUN_REPORT, Some(report))
    });
    push(job(JobState::Completed.event(), None));
    push(job(names::FINAL_REPORT, Some(report)));
    events
}

/// Prints one JSON line; a closed stdout (`| head`) ends the run quietly.
fn emit(line: &str) -> Result<(), String> {
    writeln!(std::io::stdout().lock(), "{line}").map_err(|e| format!("writing to stdout: {e}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Appends the job to `url`, then times `events()` + `rebuild()` `args.runs` times.
async fn bench(url: &str, args: &Args) -> Result<(), String> {
    let backend = url.split(':').next().unwrap_or("unknown");
    let store = stampede_store::open(url).await.map_err(|e| e.to_string())?;
    let job = NewJob {
        name: "status-bench".into(),
        state: JobState::Started.name().into(),
        ..NewJob::default()
    };
    let job_id = store.create_job(job).await.map_err(|e| e.to_string())?;
    let events = job_events(job_id, args.events);
    let count = events.len();
    let started = Instant::now();
    for batch in events.chunks(args.batch) {
        store.append(batch).await.map_err(|e| e.to_string())?;
    }
    let seconds = started.elapsed().as_secs_f64();
    emit(&format!(
        "{{\"backend\":\"{backend}\",\"op\":\"append\",\"events\":{count},\"batch\":{},\"seconds\":{seconds:.3}}}",
        args.batch
    ))?;
    drop(events);

    let layout = [TestLayout {
        name: "fleet".into(),
        steps: STEPS.iter().map(|&step| step.to_owned()).collect(),
    }];
    let (mut reads, mut rebuilds, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let (read, rebuilt, dropped) = time_status(&*store, job_id, &layout, count).await?;
        let total = read + rebuilt;
        reads.push(read);
        rebuilds.push(rebuilt);
        totals.push(total);
        emit(&format!(
            "{{\"backend\":\"{backend}\",\"op\":\"status\",\"run\":{run},\"events\":{count},\"read_seconds\":{read:.3},\"rebuild_seconds\":{rebuilt:.3},\"total_seconds\":{total:.3},\"drop_seconds\":{dropped:.3}}}"
        ))?;
    }
    emit(&format!(
        "{{\"backend\":\"{backend}\",\"op\":\"summary\",\"runs\":{},\"events\":{count},\"read_seconds_median\":{:.3},\"rebuild_seconds_median\":{:.3},\"total_seconds_median\":{:.3}}}",
        args.runs,
        median(&mut reads),
        median(&mut rebuilds),
        median(&mut totals)
    ))
}

/// Seconds to read the job's events, to rebuild its status and to drop it; checks the
/// status.
async fn time_status(
    store: &dyn EventStore,
    job_id: u64,
    layout: &[TestLayout],
    expected: usize,
) -> Result<(f64, f64, f64), String> {
    let started = Instant::now();
    let query = EventQuery {
        job_id,
        ..EventQuery::default()
    };
    let events = store.events(&query).await.map_err(|e| e.to_string())?;
    let read = started.elapsed().as_secs_f64();
    if events.len() != expected {
        return Err(format!("read {} events, expected {expected}", events.len()));
    }
    let started = Instant::now();
    let status = rebuild(job_id, "status-bench", layout, events);
    let rebuilt = started.elapsed().as_secs_f64();
    let test = &status.runs[0].tests[0];
    let failed = test.targets.iter().filter(|t| t.error.is_some()).count();
    if status.state != JobState::Completed
        || test.attempt != 1
        || test.targets.len() != TARGETS
        || failed == 0
    {
        return Err(format!(
            "unexpected status: {:?}, attempt {}, {} targets, {failed} failed",
            status.state,
            test.attempt,
            test.targets.len()
        ));
    }
    let started = Instant::now();
    drop(status);
    Ok((read, rebuilt, started.elapsed().as_secs_f64()))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let urls = args
        .sqlite
        .iter()
        .map(|path| format!("sqlite://{path}"))
        .chain(args.postgres.clone());
    for url in urls {
        if let Err(message) = runtime.block_on(bench(&url, &args)) {
            eprintln!("status_bench: {url}: {message}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
