//! The `command` snapshotter: each operation is a shell command template run with `sh -c`,
//! so any backup tool with a command line can be put under test.
//!
//! Placeholders `{source}`, `{target}`, `{id}`, `{client}` and `{repo}` are replaced by
//! their values, single-quoted for the shell, so paths with spaces are safe. A placeholder
//! right after `$` is left alone, so `${id}` stays a shell variable. The same values are
//! also in the environment as `STAMPEDE_SOURCE`, `STAMPEDE_TARGET`, `STAMPEDE_ID`,
//! `STAMPEDE_CLIENT` and `STAMPEDE_REPO`.
//!
//! The snapshot id is taken from the snapshot command's standard output with `id_pattern`,
//! a regular expression (the `regex` crate's syntax): the **last** match wins, and the id
//! is its `id` named group, else its first group, else the whole match. The default,
//! `(?m)^\s*(?P<id>\S+)\s*$`, takes the last non-blank line. For kopia:
//! `ID (?P<id>[0-9a-f]+)`. `list` prints one id per line.
//!
//! Fault injection: with `server` set, the snapshotter runs the server itself — a
//! foreground command spawned in its own process group by `start_server`, a
//! [`ServerProcess`] — and `restart_server` kills that group with SIGKILL and spawns it
//! again, then waits until `server_ready` succeeds. The group is killed when the
//! snapshotter is dropped, or by [`CommandSnapshotter::stop_server`].

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{ClientId, SnapshotError, SnapshotId, Snapshotter};
use crate::outcome::Outcome;
use crate::server::ServerProcess;

/// The default id pattern: the last non-blank line of the snapshot command's output.
pub const DEFAULT_ID_PATTERN: &str = r"(?m)^\s*(?P<id>\S+)\s*$";

/// How much of a failing command's stderr or stdout goes into an error message.
const OUTPUT_TAIL: usize = 2000;

fn default_id_pattern() -> String {
    DEFAULT_ID_PATTERN.to_string()
}

fn default_timeout() -> String {
    "10m".to_string()
}

/// Shell command templates for each operation of a [`CommandSnapshotter`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The repository (a path or URL), substituted for `{repo}`.
    pub repo: String,
    /// Takes a snapshot of `{source}` and prints its id; must use `{source}`.
    pub snapshot: String,
    /// Restores snapshot `{id}` into the existing directory `{target}`; must use both.
    pub restore: String,
    /// Deletes snapshot `{id}`; must use `{id}`.
    pub delete: String,
    /// Prints the ids of the repository's snapshots, one per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Collects garbage in the repository; without it `gc` is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<String>,
    /// Starts the server (run once, must return once the server is up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_server: Option<String>,
    /// The server under test as a foreground command: spawned in its own process group
    /// when the server starts, killed with SIGKILL and spawned again by `restart_server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Succeeds once the spawned `server` accepts work; retried every 100 ms for up to
    /// `timeout` after each spawn. Without it the server is taken as up at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ready: Option<String>,
    /// Authorizes `{client}` on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_client: Option<String>,
    /// Connects `{client}` to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// Revokes `{client}` at cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_client: Option<String>,
    /// Regular expression that finds the id in the snapshot command's output (last match;
    /// named group `id`, else group 1, else the whole match).
    #[serde(default = "default_id_pattern")]
    pub id_pattern: String,
    /// How long one command may run before it is killed, e.g. `"30s"`, `"10m"`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

impl CommandConfig {
    /// A configuration with the required templates and defaults for the rest.
    pub fn new(
        repo: impl Into<String>,
        snapshot: impl Into<String>,
        restore: impl Into<String>,
        delete: impl Into<String>,
    ) -> Self {
        Self {
            repo: repo.into(),
            snapshot: snapshot.into(),
            restore: restore.into(),
            delete: delete.into(),
            list: None,
            gc: None,
            start_server: None,
            server: None,
            server_ready: None,
            authorize_client: None,
            connect: None,
            remove_client: None,
            id_pattern: default_id_pattern(),
            timeout: default_timeout(),
        }
    }
}

/// Runs shell command templates; see the module docs for placeholders and id extraction.
#[derive(Debug, Clone)]
pub struct CommandSnapshotter {
    config: CommandConfig,
    id_pattern: Regex,
    timeout: Duration,
    server: Arc<tokio::sync::Mutex<Option<ServerProcess>>>,
}

/// SIGKILLs a command's process group when dropped, unless disarmed (the command ended
/// first).
#[derive(Debug)]
struct KillGroupOnDrop(Option<rustix::process::Pid>);

impl KillGroupOnDrop {
    /// The guard of `child`'s group (the child leads a group of its own).
    fn of(child: &tokio::process::Child) -> KillGroupOnDrop {
        KillGroupOnDrop(
            child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
        )
    }
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            // An error means the group already ended: nothing left to kill.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

/// Kills `server`'s process group on a blocking thread: the kill waits until the group is
/// gone, which must not hold up the runtime.
async fn stop(server: ServerProcess) {
    let _ = tokio::task::spawn_blocking(move || drop(server)).await;
}

/// Values for one expansion; `None` placeholders are left as written.
#[derive(Default)]
struct Vars<'a> {
    source: Option<&'a str>,
    target: Option<&'a str>,
    id: Option<&'a str>,
    client: Option<&'a str>,
}

impl CommandSnapshotter {
    /// Validates the templates, the id pattern and the timeout.
    pub fn new(config: CommandConfig) -> Result<Self, SnapshotError> {
        let need = |op: &str, template: &str, names: &[&str]| {
            for name in names {
                if !template.contains(&format!("{{{name}}}")) {
                    return Err(SnapshotError::Config(format!(
                        "the {op} command must use {{{name}}}: {template:?}"
                    )));
                }
            }
            Ok(())
        };
        need("snapshot", &config.snapshot, &["source"])?;
        need("restore", &config.restore, &["id", "target"])?;
        need("delete", &config.delete, &["id"])?;
        let id_pattern = Regex::new(&config.id_pattern).map_err(|e| {
            SnapshotError::Config(format!(
                "id_pattern {:?} is not a valid regex: {e}",
                config.id_pattern
            ))
        })?;
        let timeout = humantime::parse_duration(config.timeout.trim()).map_err(|_| {
            SnapshotError::Config(format!(
                "timeout {:?} is not a duration like \"30s\" or \"10m\"",
                config.timeout
            ))
        })?;
        Ok(Self {
            config,
            id_pattern,
            timeout,
            server: Arc::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &CommandConfig {
        &self.config
    }

    fn expand(&self, template: &str, vars: &Vars<'_>) -> String {
        let values = [
            ("source", vars.source),
            ("target", vars.target),
            ("id", vars.id),
            ("client", vars.client),
            ("repo", Some(self.config.repo.as_str())),
        ];
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        'scan: while let Some(open) = rest.find('{') {
            let preceded_by_dollar =
                rest[..open].ends_with('$') || (open == 0 && out.ends_with('$'));
            for (name, value) in values {
                let token = format!("{{{name}}}");
                if let (false, Some(value), true) =
                    (preceded_by_dollar, value, rest[open..].starts_with(&token))
                {
                    out.push_str(&rest[..open]);
                    out.push_str(&shell_quote(value));
                    rest = &rest[open + token.len()..];
                    continue 'scan;
                }
            }
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Expands and runs one template; returns its stdout on success.
    async fn run(
        &self,
        op: &'static str,
        template: &str,
        vars: Vars<'_>,
    ) -> Result<String, SnapshotError> {
        let command = self.expand(template, &vars);
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("STAMPEDE_REPO", &self.config.repo);
        for (key, value) in [
            ("STAMPEDE_SOURCE", vars.source),
            ("STAMPEDE_TARGET", vars.target),
            ("STAMPEDE_ID", vars.id),
            ("STAMPEDE_CLIENT", vars.client),
        ] {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        // Its own process group, so a timeout kills the whole pipeline, not just `sh`.
        cmd.process_group(0);
        let child = cmd.spawn().map_err(|source| SnapshotError::Spawn {
            op,
            command: command.clone(),
            source,
        })?;
        // Kills the whole group on a timeout, and when this future is dropped (a cancelled
        // job): `kill_on_drop` alone would stop `sh` and leave its pipeline running.
        let mut guard = KillGroupOnDrop::of(&child);
        let waited = tokio::time::timeout(self.timeout, child.wait_with_output()).await;
        if waited.is_ok() {
            guard.0 = None;
        }
        drop(guard);
        let output = match waited {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(SnapshotError::Spawn {
                    op,
                    command,
                    source,
                });
            }
            Err(_) => {
                return Err(SnapshotError::Timeout {
                    op,
                    command,
                    after: self.timeout,
                });
            }
        };
        if !output.status.success() {
            return Err(SnapshotError::Failed {
                op,
                command,
                status: output.status.to_string(),
                stderr: tail(&String::from_utf8_lossy(&output.stderr)),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The id in a snapshot command's output, per `id_pattern`.
    pub fn extract_id(&self, stdout: &str) -> Option<SnapshotId> {
        let caps = self.id_pattern.captures_iter(stdout).last()?;
        let m = caps
            .name("id")
            .or_else(|| caps.get(1))
            .or_else(|| caps.get(0))?;
        let id = m.as_str().trim();
        (!id.is_empty()).then(|| SnapshotId(id.to_string()))
    }

    /// Spawns the `server` command and waits until `server_ready` succeeds.
    async fn spawn_server(&self, template: &str) -> Result<ServerProcess, SnapshotError> {
        let command = self.expand(template, &Vars::default());
        let env = [("STAMPEDE_REPO", self.config.repo.as_str())];
        let server =
            ServerProcess::spawn_quiet(&command, &env, self.timeout).map_err(|message| {
                SnapshotError::Other {
                    op: "server",
                    message,
                }
            })?;
        self.until_ready(server, command).await
    }

    /// Retries `server_ready` every 100 ms until it succeeds, `server` (run as `command`)
    /// exits, or the timeout passes; a server that is not ready is killed.
    async fn until_ready(
        &self,
        mut server: ServerProcess,
        command: String,
    ) -> Result<ServerProcess, SnapshotError> {
        let Some(ready) = &self.config.server_ready else {
            return Ok(server);
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let tried = self.run("server ready", ready, Vars::default()).await;
            if tried.is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.exited() {
                stop(server).await;
                return Err(SnapshotError::Failed {
                    op: "server",
                    command,
                    status: status.to_string(),
                    stderr: "the server exited before it was ready".into(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                stop(server).await;
                return Err(SnapshotError::Timeout {
                    op: "server ready",
                    command: ready.clone(),
                    after: self.timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id of the running `server` command, if any.
    pub async fn server_pid(&self) -> Option<u32> {
        self.server
            .lock()
            .await
            .as_ref()
            .and_then(ServerProcess::id)
    }

    /// Kills the running `server` command's process group, if any, and waits until it is
    /// gone (off the runtime's threads, unlike dropping the last clone of the snapshotter).
    pub async fn stop_server(&self) {
        if let Some(server) = self.server.lock().await.take() {
            stop(server).await;
        }
    }

    async fn hook(
        &self,
        op: &'static str,
        template: Option<&String>,
        client: Option<&ClientId>,
    ) -> Result<(), SnapshotError> {
        let Some(template) = template else {
            return Ok(());
        };
        let vars = Vars {
            client: client.map(|c| c.0.as_str()),
            ..Vars::default()
        };
        self.run(op, template, vars).await.map(drop)
    }
}

impl Snapshotter for CommandSnapshotter {
    async fn start_server(&self) -> Result<(), SnapshotError> {
        if let Some(template) = &self.config.server {
            let mut slot = self.server.lock().await;
            if slot.is_none() {
                *slot = Some(self.spawn_server(template).await?);
            }
        }
        self.hook("start server", self.config.start_server.as_ref(), None)
            .await
    }

    async fn authorize_client(&self, client: &ClientId) -> Result<(), SnapshotError> {
        self.hook(
            "authorize client",
            self.config.authorize_client.as_ref(),
            Some(client),
        )
        .await
    }

    async fn connect(&self, client: &ClientId) -> Result<(), SnapshotError> {
        self.hook("connect", self.config.connect.as_ref(), Some(client))
            .await
    }

    async fn snapshot(
        &self,
        client: &ClientId,
        source: &Path,
    ) -> Result<SnapshotId, SnapshotError> {
        let source = path_str("snapshot", source)?;
        let vars = Vars {
            source: Some(source),
            client: Some(&client.0),
            ..Vars::default()
        };
        let stdout = self.run("snapshot", &self.config.snapshot, vars).await?;
        self.extract_id(&stdout).ok_or_else(|| SnapshotError::NoId {
            command: self.config.snapshot.clone(),
            pattern: self.config.id_pattern.clone(),
            stdout: tail(&stdout),
        })
    }

    async fn restore(
        &self,
        client: &ClientId,
        id: &SnapshotId,
        target: &Path,
    ) -> Result<(), SnapshotError> {
        let target = path_str("restore", target)?;
        let vars = Vars {
            target: Some(target),
            id: Some(&id.0),
            client: Some(&client.0),
            ..Vars::default()
        };
        self.run("restore", &self.config.restore, vars)
            .await
            .map(drop)
    }

    async fn list(&self, client: &ClientId) -> Result<Vec<SnapshotId>, SnapshotError> {
        let template = self
            .config
            .list
            .as_ref()
            .ok_or(SnapshotError::Unsupported { op: "list" })?;
        let vars = Vars {
            client: Some(&client.0),
            ..Vars::default()
        };
        let stdout = self.run("list", template, vars).await?;
        Ok(stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| SnapshotId(l.into()))
            .collect())
    }

    async fn delete(&self, client: &ClientId, id: &SnapshotId) -> Result<(), SnapshotError> {
        let vars = Vars {
            id: Some(&id.0),
            client: Some(&client.0),
            ..Vars::default()
        };
        self.run("delete", &self.config.delete, vars)
            .await
            .map(drop)
    }

    async fn gc(&self) -> Result<Outcome<()>, SnapshotError> {
        match &self.config.gc {
            None => Ok(Outcome::noop("no gc command is configured")),
            Some(template) => self
                .run("gc", template, Vars::default())
                .await
                .map(|_| Outcome::Done(())),
        }
    }

    async fn restart_server(&self) -> Result<Outcome<()>, SnapshotError> {
        let Some(template) = &self.config.server else {
            return Ok(Outcome::noop("no server command is configured"));
        };
        let mut slot = self.server.lock().await;
        let Some(mut server) = slot.take() else {
            *slot = Some(self.spawn_server(template).await?);
            return Ok(Outcome::Done(()));
        };
        // The kill waits until the old group is gone (a server the shell forked too), so
        // the new server finds its port free: on a blocking thread.
        let restarted = tokio::task::spawn_blocking(move || server.restart().map(|()| server))
            .await
            .map_err(|e| e.to_string())
            .and_then(|restarted| restarted)
            .map_err(|message| SnapshotError::Other {
                op: "restart server",
                message,
            })?;
        let command = self.expand(template, &Vars::default());
        *slot = Some(self.until_ready(restarted, command).await?);
        Ok(Outcome::Done(()))
    }

    async fn remove_client(&self, client: &ClientId) -> Result<(), SnapshotError> {
        self.hook(
            "remove client",
            self.config.remove_client.as_ref(),
            Some(client),
        )
        .await
    }
}

fn path_str<'a>(op: &'static str, path: &'a Path) -> Result<&'a str, SnapshotError> {
    path.to_str().ok_or_else(|| SnapshotError::Other {
        op,
        message: format!("path {path:?} is not UTF-8 and cannot be put in a command line"),
    })
}

/// `'...'` with embedded single quotes written as `'\''`: a value any POSIX shell reads
/// back as one word, whatever it holds.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn tail(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().rev().nth(OUTPUT_TAIL) {
        Some((i, _)) => format!("...{}", &text[i..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshotter(pattern: &str) -> CommandSnapshotter {
        let mut c = CommandConfig::new("/r e", "snap {source}", "get {id} {target}", "rm {id}");
        c.id_pattern = pattern.into();
        CommandSnapshotter::new(c).unwrap()
    }

    #[tokio::test]
    async fn a_dropped_command_takes_its_whole_pipeline_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let s = snapshotter(DEFAULT_ID_PATTERN);
        // `sh` forks `sleep` and waits: only a group kill stops the `sleep`.
        let template = format!("sleep 30 & echo $! > '{}'; wait", pid.display());
        let run = s.run("snapshot", &template, Vars::default());
        // The job was cancelled: the future is dropped mid-command.
        let dropped = tokio::time::timeout(Duration::from_millis(300), run).await;
        assert!(dropped.is_err());
        let pid: i32 = std::fs::read_to_string(&pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed, `sleep` is gone or a zombie waiting for init (or a subreaper) to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z"))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive = alive();
        assert!(!alive, "the command's `sleep` outlived the dropped command");
    }

    #[test]
    fn placeholders_are_quoted_and_shell_variables_kept() {
        let s = snapshotter(DEFAULT_ID_PATTERN);
        let vars = Vars {
            id: Some("it's"),
            source: Some("/a b"),
            ..Vars::default()
        };
        assert_eq!(
            s.expand(
                "x={id}; tar -C {source} -f {repo}/$x ${id} {unknown} {",
                &vars
            ),
            r"x='it'\''s'; tar -C '/a b' -f '/r e'/$x ${id} {unknown} {"
        );
    }

    #[test]
    fn id_is_the_last_match_of_the_pattern() {
        let s = snapshotter(DEFAULT_ID_PATTERN);
        assert_eq!(s.extract_id("noise\n  42 \n\n").unwrap().0, "42");
        assert_eq!(s.extract_id(" \n"), None);
        let kopia = snapshotter(r"ID (?P<id>[0-9a-f]+)");
        let out = "Created snapshot with root k1 and ID 9a3f in 1s\nbye";
        assert_eq!(kopia.extract_id(out).unwrap().0, "9a3f");
        assert_eq!(
            snapshotter(r"id=(\d+)").extract_id("id=1 id=2").unwrap().0,
            "2"
        );
    }

    #[test]
    fn templates_must_use_their_placeholders() {
        let err = CommandSnapshotter::new(CommandConfig::new(
            "r",
            "snap",
            "get {id} {target}",
            "rm {id}",
        ));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("snapshot command must use {source}")
        );
        let err =
            CommandSnapshotter::new(CommandConfig::new("r", "s {source}", "get {id}", "rm {id}"));
        assert!(err.unwrap_err().to_string().contains("{target}"));
        let mut bad = CommandConfig::new("r", "s {source}", "g {id} {target}", "rm {id}");
        bad.timeout = "soon".into();
        assert!(
            CommandSnapshotter::new(bad)
                .unwrap_err()
                .to_string()
                .contains("timeout")
        );
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let json = r#"{"repo":"r","snapshot":"s","restore":"r","delete":"d","gcc":"x"}"#;
        assert!(serde_json::from_str::<CommandConfig>(json).is_err());
    }
}
