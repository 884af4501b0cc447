//! `stampede sut`: the built-in system under test, until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;

use stampede_core::ExitCode as Code;
use stampede_sut::{Config, SnapBugs, SnapConfig, WorkspaceConfig, run_blocking_with_store};
use tokio_util::sync::CancellationToken;

use crate::Failed;
use crate::cli::SutArgs;

pub(crate) fn run(args: SutArgs) -> Result<Code, Failed> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| {
        Failed::config(format!(
            "--addr {:?} is not an address; write HOST:PORT such as 127.0.0.1:8080 (port 0 picks a free port)",
            args.addr
        ))
    })?;
    let config = Config {
        addr,
        stall_every: args.stall_every,
        stall_for: args.stall_for.unwrap_or_default(),
        tls: args.tls,
        // 0: one per core the process may use.
        threads: args.threads.map_or(0, usize::from),
        workspaces: WorkspaceConfig {
            provisioners: args.ws_provisioners,
            build_time: args.ws_build_time,
            failure_rate: args.ws_failure_rate,
            seed: args.ws_seed,
        },
    };
    config
        .validate()
        .map_err(|e| Failed::config(e.to_string()))?;
    let snap = match &args.snap_dir {
        None => None,
        Some(dir) => {
            let mut snap = SnapConfig::new(dir);
            snap.admin_token = args.snap_admin_token.clone();
            if let Some(bugs) = &args.snap_bugs {
                snap.bugs = bugs
                    .parse::<SnapBugs>()
                    .map_err(|e| Failed::config(format!("--snap-bugs {bugs:?}: {e}")))?;
            }
            Some(snap)
        }
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
        }
        on_signal.cancel();
    });
    run_blocking_with_store(config, snap, shutdown, |url| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {url}");
        let _ = out.flush();
    })
    .map_err(|e| Failed::other(e.to_string()))?;
    Ok(Code::Passed)
}
