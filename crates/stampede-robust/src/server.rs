//! The server under test as a process of ours, so a fault can kill it with SIGKILL and
//! start it again on the same port and data: the robustness step's `http` store, and the
//! command snapshotter's `server`.
//!
//! The command runs with `sh -c` in its own process group (the whole group is killed, so
//! a shell wrapper does not leave the real server running). Started with [`ServerProcess::start`],
//! without a configured URL the server's first line of output must be `listening on URL`
//! (what `stampede sut` prints); the port it chose is then `{port}` for every restart.
//! Started with [`ServerProcess::spawn_quiet`], the command runs as it is, its output
//! discarded, and whoever started it decides when it is up.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A running server command; killed (its whole process group) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    template: String,
    /// True when the URL is read from the server's output.
    reads_url: bool,
    /// `{port}` in the template is the port; false: the template is run as it is.
    replaces_port: bool,
    port: u16,
    /// Added to the command's environment.
    env: Vec<(String, String)>,
    /// The command's standard error is discarded rather than passed on.
    quiet: bool,
    wait: Duration,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `template` (with `{port}` = the port of `url`, or 0 without one) and, when
    /// there is no `url`, waits up to `wait` for its `listening on URL` line. Returns the
    /// server and the store's URL.
    pub fn start(
        template: &str,
        url: Option<&str>,
        wait: Duration,
    ) -> Result<(ServerProcess, String), String> {
        let port = match url {
            Some(url) => port_of(url)?,
            None => 0,
        };
        let mut server = ServerProcess {
            template: template.to_string(),
            reads_url: url.is_none(),
            replaces_port: true,
            port,
            env: Vec::new(),
            quiet: false,
            wait,
            child: None,
        };
        let printed = server.spawn()?;
        let url = match (url, printed) {
            (Some(url), _) => url.to_string(),
            (None, printed) => {
                let printed = printed.ok_or("the server printed no URL")?;
                server.port = port_of(&printed)?;
                printed
            }
        };
        Ok((server, url))
    }

    /// Starts `command` as it is (no `{port}`, no URL to read) with `env` added to its
    /// environment and its output discarded: the command snapshotter's `server`, which
    /// tells when it is up with a command of its own. A kill waits up to `wait` for the
    /// group to be gone.
    pub fn spawn_quiet(
        command: &str,
        env: &[(&str, &str)],
        wait: Duration,
    ) -> Result<ServerProcess, String> {
        let mut server = ServerProcess {
            template: command.to_string(),
            reads_url: false,
            replaces_port: false,
            port: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            quiet: true,
            wait,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The process id of the running command (the `sh` leading its group), if any.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The command's exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Kills the server's process group with SIGKILL, reaps it, and starts it again on the
    /// same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        // The old server's port may take a moment to be free (its last threads closing
        // it): a server that exits before printing its URL is started again, until `wait`.
        let deadline = std::time::Instant::now() + self.wait;
        loop {
            match self.spawn() {
                Ok(printed) => return self.same_port(printed),
                Err(e) if std::time::Instant::now() >= deadline || !e.contains("exited") => {
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Clients keep the URL the server first printed, so a server that comes back on
    /// another port (its command has no `{port}`) would lose them; that is an error.
    fn same_port(&self, printed: Option<String>) -> Result<(), String> {
        let Some(printed) = printed else {
            return Ok(());
        };
        let port = port_of(&printed)?;
        if port == self.port {
            return Ok(());
        }
        Err(format!(
            "the server `{}` came back on port {port} after a restart, not on {}: put \
             `{{port}}` in the server command so it listens on the same port again",
            self.template, self.port
        ))
    }

    fn spawn(&mut self) -> Result<Option<String>, String> {
        let command = if self.replaces_port {
            self.template.replace("{port}", &self.port.to_string())
        } else {
            self.template.clone()
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .process_group(0)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(if self.reads_url {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(if self.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .map_err(|e| format!("cannot start the server `{command}`: {e}"))?;
        let printed = match child.stdout.take() {
            Some(stdout) => {
                let (tx, rx) = mpsc::channel();
                // Reads the first line, then drains the rest so the server never blocks
                // on a full pipe.
                std::thread::spawn(move || {
                    let mut lines = BufReader::new(stdout).lines();
                    let _ = tx.send(lines.next());
                    for _ in lines {}
                });
                let first = rx.recv_timeout(self.wait);
                let (url, why) = match first {
                    Ok(Some(Ok(line))) => match line.strip_prefix("listening on ") {
                        Some(url) => (Some(url.trim().to_string()), String::new()),
                        None => (None, format!("printed {line:?} instead of `listening on URL`")),
                    },
                    Ok(_) => (None, "exited (or closed its output) before printing `listening on URL`; its error output is above".into()),
                    Err(_) => (None, format!(
                        "did not print `listening on URL` within {}",
                        humantime::format_duration(self.wait)
                    )),
                };
                if url.is_none() {
                    self.child = Some(child);
                    self.kill();
                    return Err(format!(
                        "the server `{command}` {why}; give the URL instead, or a command \
                         that prints it (stampede sut does)"
                    ));
                }
                url
            }
            None => None,
        };
        self.child = Some(child);
        Ok(printed)
    }

    /// SIGKILLs the whole group and waits until every process of it is gone, so the port
    /// is free again (the shell is reaped here; a server it forked is reaped by init).
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(group) = group {
            // An error means the group already ended.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = child.wait();
        if let Some(group) = group {
            wait_group_gone(group, self.wait);
        }
    }
}

/// Waits up to `within` until no thread of a process of `group` is running (after a
/// SIGKILL of the group), so what the old server held, its port above all, is free.
fn wait_group_gone(group: rustix::process::Pid, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while rustix::process::test_kill_process_group(group).is_ok()
        && group_running(group.as_raw_nonzero().get())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A restart hook for the [`HttpSnapshotter`](crate::HttpSnapshotter) over a shared server
/// process.
pub fn restart_hook(server: Arc<Mutex<ServerProcess>>) -> crate::RestartHook {
    Arc::new(move || {
        server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restart()
    })
}

/// True while a thread of a process of `group` is still running, not a zombie (Linux's
/// /proc; where it cannot be read, the group counts as gone). Threads count: the leader
/// of a multi-threaded server turns zombie before its other threads have closed its
/// sockets. A zombie nobody reaps (a server the shell forked, reparented when the shell
/// died) must not hold the restart back.
fn group_running(group: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let group = group.to_string();
    // After `pid (comm) `: state, ppid, pgrp.
    let fields = |stat: &str| -> Option<(String, String)> {
        let (_, rest) = stat.rsplit_once(") ")?;
        let mut f = rest.split(' ');
        let state = f.next()?.to_string();
        Some((state, f.nth(1)?.to_string()))
    };
    let live = |state: &str| state != "Z" && state != "X";
    dir.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        match fields(&stat) {
            Some((_, pgrp)) if pgrp == group => {
                let Ok(tasks) = std::fs::read_dir(entry.path().join("task")) else {
                    return false;
                };
                tasks.flatten().any(|task| {
                    std::fs::read_to_string(task.path().join("stat"))
                        .ok()
                        .and_then(|s| fields(&s))
                        .is_some_and(|(state, _)| live(&state))
                })
            }
            _ => false,
        }
    })
}

fn port_of(url: &str) -> Result<u16, String> {
    url.strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("{url:?} is not an http://host:port URL with a port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(server: &ServerProcess) -> i32 {
        i32::try_from(server.child.as_ref().unwrap().id()).unwrap()
    }

    #[test]
    fn a_restart_kills_the_whole_group_and_starts_again_on_the_same_port() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ports");
        // Not `exec`: the shell forks `sleep`, so only a group kill stops both.
        let template = format!("echo {{port}} >> '{}'; sleep 30; true", log.display());
        let wait = Duration::from_secs(5);
        let (mut server, url) =
            ServerProcess::start(&template, Some("http://127.0.0.1:4567"), wait).unwrap();
        assert_eq!(url, "http://127.0.0.1:4567");
        let first = group_of(&server);
        std::thread::sleep(Duration::from_millis(200));
        assert!(group_running(first));
        server.restart().unwrap();
        assert!(!group_running(first), "the first server's group is gone");
        let second = group_of(&server);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "4567\n4567\n");
        drop(server);
        assert!(!group_running(second), "dropping the server kills it");
    }

    #[test]
    fn a_server_that_does_not_print_its_url_is_refused_with_what_it_did() {
        let wait = Duration::from_secs(5);
        let printed = ServerProcess::start("echo hello; sleep 30", None, wait)
            .err()
            .unwrap();
        assert!(
            printed.contains(r#"printed "hello" instead of `listening on URL`"#),
            "{printed}"
        );
        let exited = ServerProcess::start("exit 3", None, wait).err().unwrap();
        assert!(exited.contains("exited (or closed its output)"), "{exited}");
        let silent = ServerProcess::start("sleep 30", None, Duration::from_millis(300));
        let silent = silent.err().unwrap();
        assert!(
            silent.contains("did not print `listening on URL` within 300ms"),
            "{silent}"
        );
        let (server, url) = ServerProcess::start(
            "echo listening on http://127.0.0.1:9876; sleep 30",
            None,
            wait,
        )
        .unwrap();
        assert_eq!((url.as_str(), server.port), ("http://127.0.0.1:9876", 9876));
    }

    #[test]
    fn a_restart_on_another_port_is_refused_naming_the_port_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("n");
        // No `{port}`: each start picks the next port, as a server on port 0 would.
        let template = format!(
            "n=$(cat '{0}' 2>/dev/null || echo 0); echo $((n+1)) > '{0}'; \
             echo listening on http://127.0.0.1:$((9876+n)); sleep 30",
            n.display()
        );
        let wait = Duration::from_secs(5);
        let (mut server, url) = ServerProcess::start(&template, None, wait).unwrap();
        assert_eq!(url, "http://127.0.0.1:9876");
        let moved = server.restart().err().unwrap();
        assert!(
            moved.contains("came back on port 9877 after a restart, not on 9876"),
            "{moved}"
        );
        assert!(
            moved.contains("put `{port}` in the server command"),
            "{moved}"
        );
    }
}
