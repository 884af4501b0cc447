//! `stampede server`: the job server until SIGINT or SIGTERM (which pause its jobs), its
//! tokens and its users.

use stampede_core::{Clock, SystemClock};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stampede_core::ExitCode as Code;
use stampede_job::policy::Policy;
use stampede_server::{Config, HttpLimits, LoginLimits, Server, TokenSpec};
use stampede_store::{EventStore, TokenRecord};
use tokio::signal::unix::{SignalKind, signal};

use crate::Failed;
use crate::cli::{ServerArgs, ServerCommand, TokenCommand, UserCommand};

async fn open(url: &str) -> Result<Arc<dyn EventStore>, Failed> {
    stampede_store::open(url)
        .await
        .map_err(|e| Failed::config(format!("--database {url}: {e}")))
}

pub(crate) fn run(args: ServerArgs) -> Result<Code, Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::other(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        match args.command {
            Some(ServerCommand::Token(command)) => token(command).await,
            Some(ServerCommand::User(command)) => user(command).await,
            None => serve(args).await,
        }
    })
}

async fn user(command: UserCommand) -> Result<Code, Failed> {
    match command {
        UserCommand::Create {
            name,
            project,
            database,
        } => {
            let password = crate::password()?;
            let store = open(&database.database).await?;
            stampede_server::create_user(&store, &name, &project, &password)
                .await
                .map_err(|e| match e {
                    stampede_server::UserError::Hash(_) => Failed::other(e.to_string()),
                    _ => Failed::config(e.to_string()),
                })?;
            eprintln!("user {name:?} of project {project:?} created");
        }
        UserCommand::List { database } => {
            let store = open(&database.database).await?;
            let users = store
                .list_users()
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            for u in users {
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    u.id,
                    u.name,
                    u.project,
                    time(u.created_at_us)
                );
            }
        }
        UserCommand::Remove { name, database } => {
            let store = open(&database.database).await?;
            let revoked = store
                .remove_user(&name, SystemClock.now_us())
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            let Some(revoked) = revoked else {
                return Err(Failed::config(format!(
                    "there is no user {name:?}; see `stampede server user list`"
                )));
            };
            eprintln!("user {name:?} removed; {revoked} of its tokens revoked");
        }
    }
    Ok(Code::Passed)
}

/// A time in microseconds since the Unix epoch, as RFC 3339 in UTC.
fn time(us: i64) -> String {
    let at = u64::try_from(us).map_or(SystemTime::UNIX_EPOCH, |us| {
        SystemTime::UNIX_EPOCH + Duration::from_micros(us)
    });
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A token's line in `token list`: id, name, project, state, expiry, user.
fn token_line(t: &TokenRecord, now_us: i64) -> String {
    let state = if t.revoked_at_us.is_some() {
        "revoked"
    } else if !t.is_valid_at(now_us) {
        "expired"
    } else {
        "active"
    };
    let expires = t.expires_at_us.map_or_else(
        || "never expires".to_string(),
        |at| format!("expires {}", time(at)),
    );
    let user = t.user_name.as_deref().unwrap_or("-");
    format!(
        "{}\t{}\t{}\t{state}\t{expires}\t{user}",
        t.id, t.name, t.project
    )
}

async fn token(command: TokenCommand) -> Result<Code, Failed> {
    match command {
        TokenCommand::Create {
            name,
            project,
            expires_in,
            database,
        } => {
            let store = open(&database.database).await?;
            let spec = TokenSpec {
                name: &name,
                project: &project,
                expires_in,
                user: None,
            };
            let secret = stampede_server::create_token_with(&store, &SystemClock, &spec)
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            let lasts = expires_in.map_or_else(
                || "until revoked".to_string(),
                |d| format!("for {}", humantime::format_duration(d)),
            );
            eprintln!(
                "token {name:?} for project {project:?}, valid {lasts} (shown once; keep it):"
            );
            println!("{secret}");
        }
        TokenCommand::List { database } => {
            let store = open(&database.database).await?;
            let tokens = store
                .list_tokens()
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            let now = SystemClock.now_us();
            for t in &tokens {
                println!("{}", token_line(t, now));
            }
        }
        TokenCommand::Revoke { id, database } => {
            let store = open(&database.database).await?;
            let revoked = store
                .revoke_token(id, SystemClock.now_us())
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            if !revoked {
                return Err(Failed::config(format!(
                    "there is no active token {id}; see `stampede server token list`"
                )));
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(Code::Passed)
}

/// `stampede-jobs-SERVER_ID-HASH` in the temporary directory: the same for the same
/// server and store after a restart (a paused job finds its files), another for another
/// store on the same machine.
fn default_jobs_dir(server_id: &str, database: &str) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    database.hash(&mut hasher);
    std::env::temp_dir().join(format!(
        "stampede-jobs-{server_id}-{:08x}",
        hasher.finish() as u32
    ))
}

async fn serve(args: ServerArgs) -> Result<Code, Failed> {
    let store = open(&args.database.database).await?;
    let server_id = args.server_id.unwrap_or_else(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    });
    let mut policy = match &args.policy {
        Some(file) => Policy::load(file).map_err(Failed::config)?,
        None => Policy::default(),
    };
    policy.allow.extend(args.allow.iter().cloned());
    if let Some(user) = &args.run_as {
        policy.processes.run_as = Some(user.clone());
    }
    let config = Config {
        addr: args.addr,
        server_id: server_id.clone(),
        request_timeout: Duration::from_secs(30),
        instance_tag: args.instance_tag.clone(),
        registry: crate::steps::registry(),
        clock: SystemClock::shared(),
        policy,
        jobs_dir: Some(
            args.jobs_dir
                .clone()
                .unwrap_or_else(|| default_jobs_dir(&server_id, &args.database.database)),
        ),
        http: HttpLimits {
            header_read_timeout: args.header_read_timeout,
            max_connections: args.max_connections as usize,
        },
        login: LoginLimits {
            token_ttl: args.login_token_ttl,
            ..LoginLimits::default()
        },
    };
    let server = Server::start(config, store)
        .await
        .map_err(|e| Failed::other(e.to_string()))?;
    println!("listening on http://{}", server.addr());
    eprintln!(
        "server {server_id}: jobs in {}; SIGINT or SIGTERM pauses the running jobs and stops",
        args.database.database
    );
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return Err(Failed::other("cannot watch for signals"));
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping: pausing the running jobs");
    server.shutdown().await;
    Ok(Code::Passed)
}
