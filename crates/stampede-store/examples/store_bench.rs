//! Measures the event store: how many events per second one appender writes in batches, and
//! how long reading back every event of a job takes. Prints one JSON object per line: one
//! `append` and one `read` line per run, then a `summary` line with the medians.
//!
//! Run it with
//! `cargo run --release -p stampede-store --example store_bench -- --url URL --events N --batch B`
//! (`--runs R`, default 3). Each run creates a job, appends N events to it in batches of B
//! and reads them all back with one query. `bench/store/run.sh` runs it for SQLite and
//! PostgreSQL and writes the results down.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use stampede_store::{EventQuery, EventStore, NewEvent, NewJob};

/// What to measure, from the command line.
struct Args {
    url: String,
    events: usize,
    batch: usize,
    runs: usize,
}

const USAGE: &str = "usage: store_bench --url URL [--events N] [--batch B] [--runs R]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
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
            "--url" => args.url.clone_from(&value),
            "--events" => args.events = number()?,
            "--batch" => args.batch = number()?.max(1),
            "--runs" => args.runs = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        }
    }
    if args.url.is_empty() {
        return Err(format!("--url is required; {USAGE}"));
    }
    Ok(args)
}

/// A step event the size of what a job runner writes: run, test, attempt, step, target, a
/// small JSON payload.
fn event(job_id: u64, i: usize) -> NewEvent {
    const NAMES: [&str; 3] = ["TargetIn", "StepRunning", "TargetOut"];
    NewEvent {
        job_id,
        run: Some(1),
        test: Some("load".to_owned()),
        attempt: Some(0),
        step: Some("step-1".to_owned()),
        target: Some(format!("target-{:03}", i % 100)),
        name: NAMES[i % 3].to_owned(),
        payload: Some(format!("{{\"i\":{i},\"latency_us\":{}}}", 1000 + i % 5000)),
        emitted_at_us: 1_800_000_000_000_000 + i as i64,
    }
}

/// Prints one JSON line; a closed stdout (`| head`) ends the run quietly.
fn emit(line: &str) -> Result<(), String> {
    writeln!(std::io::stdout().lock(), "{line}").map_err(|e| format!("writing to stdout: {e}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn run(args: &Args) -> Result<(), String> {
    let backend = args.url.split(':').next().unwrap_or("unknown");
    let store = stampede_store::open(&args.url)
        .await
        .map_err(|e| e.to_string())?;
    let (mut rates, mut reads) = (Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let job = NewJob {
            name: format!("bench-{run}"),
            state: "started".into(),
            ..NewJob::default()
        };
        let job_id = store.create_job(job).await.map_err(|e| e.to_string())?;
        let events: Vec<NewEvent> = (0..args.events).map(|i| event(job_id, i)).collect();

        let started = Instant::now();
        for batch in events.chunks(args.batch) {
            store.append(batch).await.map_err(|e| e.to_string())?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = args.events as f64 / seconds;
        rates.push(rate);
        emit(&format!(
            "{{\"backend\":\"{backend}\",\"op\":\"append\",\"run\":{run},\"events\":{},\"batch\":{},\"seconds\":{seconds:.3},\"events_per_s\":{rate:.0}}}",
            args.events, args.batch
        ))?;
        drop(events);

        let seconds = read_all(&*store, job_id, args.events).await?;
        reads.push(seconds);
        emit(&format!(
            "{{\"backend\":\"{backend}\",\"op\":\"read\",\"run\":{run},\"events\":{},\"seconds\":{seconds:.3},\"events_per_s\":{:.0}}}",
            args.events,
            args.events as f64 / seconds
        ))?;
    }
    emit(&format!(
        "{{\"backend\":\"{backend}\",\"op\":\"summary\",\"runs\":{},\"events\":{},\"batch\":{},\"append_events_per_s_median\":{:.0},\"read_seconds_median\":{:.3}}}",
        args.runs,
        args.events,
        args.batch,
        median(&mut rates),
        median(&mut reads)
    ))
}

/// Seconds to read every event of `job_id` with one query; checks the count.
async fn read_all(store: &dyn EventStore, job_id: u64, expected: usize) -> Result<f64, String> {
    let started = Instant::now();
    let events = store
        .events(&EventQuery {
            job_id,
            ..EventQuery::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    if events.len() != expected {
        return Err(format!(
            "read {} events of job {job_id}, expected {expected}",
            events.len()
        ));
    }
    Ok(seconds)
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
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("store_bench: {message}");
            ExitCode::FAILURE
        }
    }
}
