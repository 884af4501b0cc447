//! The server under test as a process the step owns, so a fault can kill it with SIGKILL
//! and start it again on the same port and data: the `http` snapshotter's `server`.
//!
//! The command runs with `sh -c` in its own process group (the whole group is killed, so
//! a shell wrapper does not leave the real server running). Without a configured URL the
//! server's first line of output must be `listening on URL` (what `stampede sut` prints);
//! the port it chose is then `{port}` for every restart.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A running server command; killed (its whole process group) on drop.
pub(crate) struct ServerProcess {
    template: String,
    /// `Some` when the URL is read from the server's output.
    reads_url: bool,
    port: u16,
    wait: Duration,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `template` (with `{port}` = the port of `url`, or 0 without one) and, when
    /// there is no `url`, waits up to `wait` for its `listening on URL` line. Returns the
    /// server and the store's URL.
    pub(crate) fn start(
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
            port,
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

    /// Kills the server's process group with SIGKILL, reaps it, and starts it again on the
    /// same port.
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn().map(drop)
    }

    fn spawn(&mut self) -> Result<Option<String>, String> {
        let command = self.template.replace("{port}", &self.port.to_string());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(if self.reads_url {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit())
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
                        "the server `{command}` {why}; give snapshotter.http.url, or a command \
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
            let deadline = std::time::Instant::now() + self.wait;
            while rustix::process::test_kill_process_group(group).is_ok()
                && group_running(group.as_raw_nonzero().get())
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A restart hook for the http snapshotter over a shared server process.
pub(crate) fn restart_hook(server: Arc<Mutex<ServerProcess>>) -> stampede_robust::RestartHook {
    Arc::new(move || {
        server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restart()
    })
}

/// True while a process of `group` is still running, not a zombie (Linux's /proc; where
/// it cannot be read, the group counts as gone). A server the shell forked is reparented
/// when the shell dies, and a zombie nobody reaps must not hold the restart back.
fn group_running(group: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let group = group.to_string();
    dir.flatten().any(|entry| {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        is_pid
            && std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                // After `pid (comm) `: state, ppid, pgrp.
                stat.rsplit_once(") ").is_some_and(|(_, rest)| {
                    let mut fields = rest.split(' ');
                    let state = fields.next();
                    let pgrp = fields.nth(1);
                    state != Some("Z") && pgrp == Some(group.as_str())
                })
            })
    })
}

fn port_of(url: &str) -> Result<u16, String> {
    url.strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("{url:?} is not an http://host:port URL with a port"))
}
