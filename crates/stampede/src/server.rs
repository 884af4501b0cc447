//! `stampede server`: the job server until SIGINT or SIGTERM (which pause its jobs), and its
//! tokens.

use stampede_core::{Clock, SystemClock};
use std::sync::Arc;
use std::time::Duration;

use stampede_core::ExitCode as Code;
use stampede_job::policy::Policy;
use stampede_server::{Config, Server};
use stampede_store::EventStore;
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
            Some(ServerCommand::User(UserCommand::Create {
                name,
                project,
                database,
            })) => {
                let password = crate::password()?;
                let store = open(&database.database).await?;
                stampede_server::create_user(&store, &name, &project, &password)
                    .await
                    .map_err(|e| match e {
                        stampede_server::UserError::Hash(_) => Failed::other(e.to_string()),
                        _ => Failed::config(e.to_string()),
                    })?;
                eprintln!("user {name:?} of project {project:?} created");
                Ok(Code::Passed)
            }
            None => serve(args).await,
        }
    })
}

async fn token(command: TokenCommand) -> Result<Code, Failed> {
    match command {
        TokenCommand::Create {
            name,
            project,
            database,
        } => {
            let store = open(&database.database).await?;
            let secret = stampede_server::create_token(&store, &name, &project)
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            eprintln!("token {name:?} for project {project:?} (shown once; keep it):");
            println!("{secret}");
        }
        TokenCommand::List { database } => {
            let store = open(&database.database).await?;
            let tokens = store
                .list_tokens()
                .await
                .map_err(|e| Failed::other(e.to_string()))?;
            for t in tokens {
                let state = if t.revoked_at_us.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{state}", t.id, t.name, t.project);
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
