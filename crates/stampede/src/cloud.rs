//! `login`, `cloud run|status|stop` and `jobs ...`: the job server from the command line,
//! through `stampede-client` (k6 cloud's retries, idempotency keys and layered config).

use std::path::Path;
use std::time::Duration;

use stampede_api::job::{JobState, JobStatus};
use stampede_client::{Client, ClientConfig, ClientError, PartialConfig};
use stampede_core::ExitCode as Code;

use crate::Failed;
use crate::cli::{CloudCommand, ConnArgs, JobsCommand, LoginArgs};
use crate::job::{read_job, render_status, write_json};

/// How often `cloud run` reads the job's progress.
const POLL: Duration = Duration::from_secs(2);
/// `cloud run` gives up (exit 98) after this many progress reads in a row failed.
const MAX_MISSED: u32 = 5;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn config_file() -> Result<Option<PartialConfig>, Failed> {
    match stampede_client::config_path(&env) {
        Some(path) => stampede_client::load_file(&path).map_err(|e| Failed::config(e.to_string())),
        None => Ok(None),
    }
}

/// A client from every configuration layer, for a job whose descriptor may name a server.
pub(crate) fn job_client(conn: &ConnArgs, job: &stampede_job::Job) -> Result<Client, Failed> {
    let descriptor = job.cloud.as_ref().map(|c| PartialConfig {
        server: c.server.clone(),
        timeout: c.timeout,
        ..PartialConfig::default()
    });
    client(config(conn, descriptor)?)
}

/// The client's configuration from every layer.
fn config(conn: &ConnArgs, descriptor: Option<PartialConfig>) -> Result<ClientConfig, Failed> {
    let flags = PartialConfig {
        server: conn.server.clone(),
        token: conn.token.clone(),
        ..PartialConfig::default()
    };
    ClientConfig::consolidate(config_file()?, descriptor, &env, flags)
        .map_err(|e| Failed::config(e.to_string()))
}

fn client(config: ClientConfig) -> Result<Client, Failed> {
    if config.token.is_none() {
        return Err(Failed::config(
            "no token: run `stampede login --server URL --token SECRET`, or set STAMPEDE_TOKEN, or pass --token",
        ));
    }
    Client::new(config).map_err(|e| Failed::config(e.to_string()))
}

fn failed(error: ClientError) -> Failed {
    match &error {
        ClientError::Api { status, .. } if (400..500).contains(status) => {
            Failed::config(error.to_string())
        }
        _ => Failed::other(error.to_string()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::other(format!("cannot start the runtime: {e}")))
}

pub(crate) fn login(args: LoginArgs) -> Result<Code, Failed> {
    let runtime = runtime()?;
    let token = match &args.user {
        Some(user) => {
            // No token yet: the client only needs the server to log in.
            let mut config = config(&args.conn, None)?;
            config.token = None;
            let client = Client::new(config).map_err(|e| Failed::config(e.to_string()))?;
            let password = crate::password()?;
            runtime
                .block_on(client.login(user, &password))
                .map_err(failed)?
                .token
        }
        None => {
            let config = config(&args.conn, None)?;
            let token = config.token.clone().ok_or_else(|| {
                Failed::config("give --token SECRET (or STAMPEDE_TOKEN), or --user NAME to log in with a password")
            })?;
            let client = client(config)?;
            let validity = runtime
                .block_on(client.validate_token(&token))
                .map_err(failed)?;
            if !validity.is_valid {
                return Err(Failed::config(format!(
                    "the server refuses this token: {}",
                    validity.message
                )));
            }
            token
        }
    };
    let config = config(
        &ConnArgs {
            server: args.conn.server.clone(),
            token: Some(token.clone()),
        },
        None,
    )?;
    let server = config.server.clone();
    let version = runtime
        .block_on(client(config)?.version())
        .map_err(failed)?;
    let path = stampede_client::config_path(&env).ok_or_else(|| {
        Failed::other("no place for the config file: set HOME, XDG_CONFIG_HOME or STAMPEDE_CONFIG")
    })?;
    let saved = config_file()?.unwrap_or_default().merge(PartialConfig {
        server: Some(server.clone()),
        token: Some(token),
        ..PartialConfig::default()
    });
    stampede_client::save_file(&path, &saved).map_err(|e| Failed::other(e.to_string()))?;
    println!(
        "logged in to {server} (server {}, stampede {}); saved in {}",
        version.server_id,
        version.version,
        path.display()
    );
    Ok(Code::Passed)
}

fn print_status(status: &JobStatus, json: bool) -> Result<(), Failed> {
    if json {
        let text =
            serde_json::to_string_pretty(status).map_err(|e| Failed::other(e.to_string()))?;
        println!("{text}");
    } else {
        if let Some(place) = status.queued {
            println!("queued: {place} in line for a slot on the server");
        }
        print!("{}", render_status(status));
    }
    Ok(())
}

pub(crate) fn cloud(command: CloudCommand) -> Result<Code, Failed> {
    match command {
        CloudCommand::Run {
            file,
            conn,
            summary_json,
        } => cloud_run(&file, &conn, summary_json.as_deref()),
        CloudCommand::Status { id, conn, json } => {
            let client = client(config(&conn, None)?)?;
            let status = runtime()?.block_on(client.status(id)).map_err(failed)?;
            print_status(&status, json)?;
            Ok(Code::Passed)
        }
        CloudCommand::Stop { id, conn } => {
            let client = client(config(&conn, None)?)?;
            runtime()?.block_on(client.cancel(id)).map_err(failed)?;
            eprintln!("job {id}: cancel asked");
            Ok(Code::Passed)
        }
    }
}

fn cloud_run(file: &Path, conn: &ConnArgs, summary_json: Option<&Path>) -> Result<Code, Failed> {
    // Checked here first: a bad file is exit 104 without a round trip.
    let (job, text) = read_job(file)?;
    let client = job_client(conn, &job)?;
    let server = client.config().server.clone();
    let runtime = runtime()?;
    runtime.block_on(async {
        // As k6 does: the server checks the options before the run is created.
        client
            .validate_options(job.extended.clone())
            .await
            .map_err(failed)?;
        let created = client.submit(&text).await.map_err(failed)?;
        let id = created.job_id;
        println!(
            "job {id} ({}): {}{}",
            created.name,
            server.trim_end_matches('/'),
            created.status_url
        );
        let mut cancelled = false;
        let mut missed = 0;
        let mut last_line = String::new();
        loop {
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::select! {
                _ = ctrl_c, if !cancelled => {
                    eprintln!("cancelling job {id} on the server");
                    cancelled = true;
                    if let Err(e) = client.cancel(id).await {
                        eprintln!("cannot cancel job {id}: {e}");
                    }
                    continue;
                }
                () = tokio::time::sleep(POLL) => {}
            }
            let status = match client.status(id).await {
                Ok(status) => {
                    missed = 0;
                    status
                }
                Err(e) => {
                    missed += 1;
                    eprintln!("cannot read the progress of job {id}: {e}");
                    if missed >= MAX_MISSED {
                        return Ok(Code::NoProgress);
                    }
                    continue;
                }
            };
            let line = progress_line(&status);
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
            if status.state.is_final() {
                print!("{}", render_status(&status));
                if let Some(path) = summary_json {
                    write_json(path, &status)?;
                }
                return Ok(stampede_job::status::exit_code(status.state, &status));
            }
        }
    })
}

/// One line of progress: the state, the run, and targets done per test.
fn progress_line(status: &JobStatus) -> String {
    let mut line = format!("job {}: {}", status.job_id, status.state.name());
    if let Some(place) = status.queued {
        line = format!(
            "job {}: queued, {place} in line (the server runs as many jobs at once as its policy allows)",
            status.job_id
        );
    }
    if let Some(run) = status.runs.last() {
        line.push_str(&format!(", run {}", run.run));
        for test in &run.tests {
            let done = test
                .targets
                .iter()
                .filter(|t| t.out_at_us.is_some())
                .count();
            line.push_str(&format!(
                ", {} {done}/{} targets",
                test.name,
                test.targets.len()
            ));
        }
    }
    line
}

pub(crate) fn jobs(command: JobsCommand) -> Result<Code, Failed> {
    let runtime = runtime()?;
    match command {
        JobsCommand::List {
            states,
            tags,
            conn,
            json,
        } => {
            if let Some(bad) = states.iter().find(|s| JobState::from_name(s).is_none()) {
                let known: Vec<_> = JobState::ALL.iter().map(|s| s.name()).collect();
                return Err(Failed::config(format!(
                    "--state {bad:?}: use one of {}",
                    known.join(", ")
                )));
            }
            let client = client(config(&conn, None)?)?;
            let list = runtime
                .block_on(client.list(&states, &tags, None, None))
                .map_err(failed)?;
            if json {
                let text = serde_json::to_string_pretty(&list)
                    .map_err(|e| Failed::other(e.to_string()))?;
                println!("{text}");
            } else {
                for job in &list.jobs {
                    println!(
                        "{}\t{}\t{}\t{}",
                        job.job_id,
                        job.state.name(),
                        job.name,
                        job.tags.join(",")
                    );
                }
            }
        }
        JobsCommand::Status { id, conn, json } => {
            let client = client(config(&conn, None)?)?;
            let status = runtime.block_on(client.status(id)).map_err(failed)?;
            print_status(&status, json)?;
        }
        JobsCommand::Events {
            id,
            after,
            conn,
            json,
        } => {
            let client = client(config(&conn, None)?)?;
            let mut after = after;
            loop {
                let page = runtime
                    .block_on(client.events(id, after, None))
                    .map_err(failed)?;
                if page.events.is_empty() {
                    break;
                }
                for event in &page.events {
                    if json {
                        let text = serde_json::to_string(event)
                            .map_err(|e| Failed::other(e.to_string()))?;
                        println!("{text}");
                    } else {
                        let about = [&event.test, &event.step, &event.target]
                            .iter()
                            .filter_map(|p| p.as_deref())
                            .collect::<Vec<_>>()
                            .join("/");
                        let payload = event.payload.as_ref().map_or("", |p| p.get());
                        println!("{}\t{}\t{about}\t{payload}", event.seq, event.name);
                    }
                }
                after = page.next_after;
            }
        }
        JobsCommand::Pause { id, conn } => {
            let client = client(config(&conn, None)?)?;
            runtime.block_on(client.pause(id)).map_err(failed)?;
            eprintln!("job {id}: pause asked");
        }
        JobsCommand::Resume { id, conn } => {
            let client = client(config(&conn, None)?)?;
            runtime.block_on(client.resume(id)).map_err(failed)?;
            eprintln!("job {id}: resumed");
        }
        JobsCommand::Cancel { id, conn } => {
            let client = client(config(&conn, None)?)?;
            runtime.block_on(client.cancel(id)).map_err(failed)?;
            eprintln!("job {id}: cancel asked");
        }
        JobsCommand::Retry { id, conn } => {
            let client = client(config(&conn, None)?)?;
            let created = runtime.block_on(client.retry(id)).map_err(failed)?;
            println!("job {} is job {id} again", created.job_id);
        }
    }
    Ok(Code::Passed)
}
