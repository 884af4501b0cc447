//! `exec`: runs a command once per target, on this machine. Every line it prints becomes an
//! event (`CmdStdout`, `CmdStderr`); a non-zero exit, a signal or the timeout fails the
//! target. The command runs in its own process group, killed with the group on timeout or
//! cancel. Its exit code and its standard output become the variables `exit_code` and
//! `stdout`.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use stampede_api::job::events;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use stampede_store::StoreError;

use crate::duration;
use crate::emitter::Emitter;
use crate::step::{Capability, Step, StepCtx, StepError, StepOutcome, Use};

/// The most output lines kept as events per stream; the rest are counted.
const MAX_LINES: usize = 10_000;
/// The most bytes of standard output kept in the `stdout` variable.
const MAX_STDOUT_VAR: usize = 64 * 1024;

/// Runs a command.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program: an absolute path, or a name looked up in `PATH`.
    pub command: String,
    /// Its arguments (templates over the target).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables added to stampede's own (on a job server: the only ones, with
    /// `PATH` and `HOME`, unless its policy keeps its environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory (default: stampede's; on a job server, the job's own, and a
    /// relative one is inside it).
    #[serde(default)]
    pub dir: Option<String>,
    /// Kill the command and fail the target after this long (default: no limit).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<crate::duration::DurationText>")]
    pub timeout: Option<Duration>,
    /// Write each line of standard output as a `CmdStdout` event (default true).
    #[serde(default = "yes")]
    pub emit_stdout: bool,
    /// Write each line of standard error as a `CmdStderr` event (default true).
    #[serde(default = "yes")]
    pub emit_stderr: bool,
}

fn yes() -> bool {
    true
}

/// Reads a stream line by line (bytes that are not UTF-8 are replaced, not an error),
/// writing up to [`MAX_LINES`] as events; returns the leading text (up to `keep` bytes, whole
/// lines only) and the number of lines not written.
async fn pump(
    stream: impl AsyncRead + Unpin,
    emitter: Option<(&Emitter, &'static str)>,
    keep: usize,
) -> Result<(String, usize), StoreError> {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    let (mut text, mut full, mut count, mut dropped) = (String::new(), false, 0, 0);
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) => break,
            Ok(_) => {}
            // A broken pipe ends the output; the exit status says how the command ended.
            Err(_) => break,
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end_matches(['\n', '\r']);
        if !full && text.len() + line.len() < keep {
            text.push_str(line);
            text.push('\n');
        } else {
            full = true;
        }
        if let Some((emitter, name)) = emitter {
            if count < MAX_LINES {
                emitter
                    .emit(name, Some(serde_json::json!({ "Msg": line })))
                    .await?;
                count += 1;
            } else {
                dropped += 1;
            }
        }
    }
    Ok((text, dropped))
}

/// Kills the command's whole process group (it runs in its own) and reaps the command.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.wait().await;
}

/// Runs a command per target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exec;

impl Step for Exec {
    type Config = ExecConfig;
    const KEY: &'static str = "exec";
    const SUMMARY: &'static str = "Run a command.";
    const NEEDS: &'static [Capability] = &[Capability::RunProcesses];

    fn uses(&self, config: &ExecConfig) -> Vec<Use> {
        config
            .dir
            .iter()
            .map(|dir| Use::write("dir", dir))
            .collect()
    }

    async fn run(&self, config: &ExecConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
        run(config, ctx).await
    }
}

async fn run(config: &ExecConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
    let mut command = match ctx.access.command(&config.command, &config.args) {
        Ok(command) => command,
        Err(refused) => return Ok(StepOutcome::Failed(refused.to_string())),
    };
    if let Err(refused) = ctx.access.env(&mut command, &config.env) {
        return Ok(StepOutcome::Failed(refused.to_string()));
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = &config.dir {
        match ctx.access.path(dir) {
            Ok(dir) => command.current_dir(dir),
            Err(refused) => return Ok(StepOutcome::Failed(format!("dir: {refused}"))),
        };
    }
    // The shorter of the step's timeout and the server's limit on processes.
    let timeout = match (config.timeout, ctx.access.process_timeout()) {
        (Some(own), Some(limit)) => Some(own.min(limit)),
        (own, limit) => own.or(limit),
    };
    ctx.events
        .emit(
            events::CMD_START,
            Some(
                serde_json::json!({"Path": config.command, "Args": config.args, "Dir": config.dir}),
            ),
        )
        .await?;
    tracing::debug!(command = %config.command, args = ?config.args, target = %ctx.target.id, "exec: starting");
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let place = match &config.dir {
                Some(dir) => format!(" in directory {dir:?}"),
                None => String::new(),
            };
            return Ok(StepOutcome::Failed(format!(
                "cannot start {:?}{place}: {e}",
                config.command
            )));
        }
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out = pump(
        stdout,
        config
            .emit_stdout
            .then_some((ctx.events, events::CMD_STDOUT)),
        MAX_STDOUT_VAR,
    );
    let err = pump(
        stderr,
        config
            .emit_stderr
            .then_some((ctx.events, events::CMD_STDERR)),
        0,
    );
    let limit = async {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    enum End<T> {
        Finished(T),
        TimedOut,
        Cancelled,
    }
    let finished = async {
        let outputs = tokio::join!(out, err);
        (outputs, child.wait().await)
    };
    let end = tokio::select! {
        finished = finished => End::Finished(finished),
        () = limit => End::TimedOut,
        () = ctx.cancel.cancelled() => End::Cancelled,
    };
    let ((out, err), status) = match end {
        End::Finished(finished) => finished,
        End::TimedOut => {
            kill_group(&mut child).await;
            return Ok(StepOutcome::Failed(format!(
                "{:?} did not end within {} and was killed",
                config.command,
                humantime::format_duration(timeout.unwrap_or_default())
            )));
        }
        End::Cancelled => {
            kill_group(&mut child).await;
            return Ok(StepOutcome::Failed(format!(
                "{:?} was killed: the job was cancelled",
                config.command
            )));
        }
    };
    let status =
        status.map_err(|e| StepError::Failed(format!("cannot wait for {:?}: {e}", config.command)));
    let ((stdout, out_dropped), (_, err_dropped)) = (out?, err?);
    let status = status?;
    ctx.events
        .emit(
            events::CMD_END,
            Some(serde_json::json!({"ExitCode": status.code(), "DroppedLines": out_dropped + err_dropped})),
        )
        .await?;
    tracing::debug!(command = %config.command, target = %ctx.target.id, status = %status, "exec: ended");
    match status.code() {
        Some(0) => Ok(StepOutcome::Passed(BTreeMap::from([
            ("exit_code".to_string(), serde_json::json!(0)),
            (
                "stdout".to_string(),
                serde_json::Value::String(stdout.trim_end().to_string()),
            ),
        ]))),
        Some(code) => Ok(StepOutcome::Failed(format!(
            "{:?} exited with status {code}",
            config.command
        ))),
        None => Ok(StepOutcome::Failed(format!(
            "{:?} was killed by a signal ({status})",
            config.command
        ))),
    }
}
