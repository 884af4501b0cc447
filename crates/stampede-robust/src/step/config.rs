//! The `robustness` step's configuration, field by field (the JSON Schema and the user
//! documentation come from these doc comments), and its checks.

use std::time::Duration;

use crate::{ActionKind, CommandConfig, CommandSnapshotter, Weights, WriterOptions};
use schemars::JsonSchema;
use serde::Deserialize;

use stampede_job::duration;

/// Kopia's multi-client robustness test: N clients write random files, snapshot, restore
/// and delete through one system under test, and every restore must match the
/// fingerprint taken before its snapshot.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RobustnessConfig {
    /// Concurrent clients, each with its own identity and data directory (1 to 256;
    /// default 4, as kopia's multiclient tests).
    #[serde(default = "four")]
    pub clients: u32,
    /// Seed of every random choice (files, actions); the same seed replays a run's
    /// choices. Default: a random one, recorded in the step's statistics.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Where the clients' data directories and restores go, and what `{work}` means in
    /// the snapshotter's templates. Default: a fresh temporary directory, removed when the
    /// step passes and kept (and named) when it fails.
    #[serde(default)]
    pub data_dir: Option<String>,
    /// How the random file trees are shaped.
    #[serde(default)]
    pub writer: WriterOptions,
    /// The system under test.
    pub snapshotter: SnapshotterConfig,
    /// Actions every client runs in order (kopia's fixed test bodies); give this or
    /// `randomized`. "Nothing to do" is tolerated, any error fails the client.
    #[serde(default)]
    pub body: Vec<BodyAction>,
    /// Random actions picked by weight until a duration has passed (kopia's
    /// `TestRandomized`); give this or `body`.
    #[serde(default)]
    pub randomized: Option<Randomized>,
    /// Faults injected between actions.
    #[serde(default)]
    pub faults: Faults,
    /// First restore and compare every live snapshot that earlier runs of this step
    /// recorded in the job's events (default true). Only where the repository outlives a
    /// run: with `data_dir` set, or an `http` store the step does not run itself.
    #[serde(default = "yes")]
    pub verify_earlier: bool,
    /// At the end, restore and compare every live snapshot of every client (after one
    /// more server restart when server faults are configured), so an acknowledged snapshot
    /// the server lost is caught even if no client happened to restore it (default true).
    #[serde(default = "yes")]
    pub verify_at_end: bool,
}

fn four() -> u32 {
    4
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// The system under test: exactly one of `command` or `http`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SnapshotterConfig {
    /// Shell command templates, so any backup tool (tar, rsync, restic, kopia) can be
    /// tested. Placeholders `{source}`, `{target}`, `{id}`, `{client}`, `{repo}` (quoted
    /// for the shell); before that, `{work}` (the step's data directory) and `{stampede}`
    /// (this program) are replaced in every template and in `repo`.
    Command(Box<CommandConfig>),
    /// The snapshot store of `stampede sut --snap-dir` (`/snap/...`).
    Http(HttpStoreConfig),
}

/// Where the sut's snapshot store is, and optionally how to run it so it can be killed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStoreConfig {
    /// Base URL, `http://host:port` (may use `{{ target.host }}`). Optional with `server`:
    /// then the URL is read from the server's first line of output (`listening on URL`,
    /// as `stampede sut` prints it).
    #[serde(default)]
    pub url: Option<String>,
    /// The store's admin secret (`stampede sut --snap-admin-token`).
    #[serde(default)]
    pub admin_token: Option<String>,
    /// The server as a foreground shell command the step runs itself, so that it can kill
    /// it with SIGKILL and start it again (faults). `{port}` is the port (0 the first time
    /// when there is no `url`, then the port it chose), `{work}` the step's data directory
    /// and `{stampede}` this program, e.g.
    /// `{stampede} sut --addr 127.0.0.1:{port} --snap-dir {work}/store`.
    #[serde(default)]
    pub server: Option<String>,
    /// How long one call may take (default 60s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub timeout: Option<Duration>,
    /// How long to retry a refused connection, e.g. while the server restarts (default
    /// 10s); also how long a started server has to print its URL.
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub connect_wait: Option<Duration>,
}

/// One entry of a fixed body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyAction {
    /// `snapshot`, `restore-compare`, `delete-snapshot`, `write-files`,
    /// `delete-subdirectory`, `delete-files`, `restore-into-data-dir`, `gc` or
    /// `restart-server`.
    pub action: ActionKind,
    /// How many times in a row (default 1).
    #[serde(default = "one")]
    pub repeat: u32,
}

/// Randomized mode.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Randomized {
    /// How long each client keeps picking actions (checked between actions).
    #[serde(deserialize_with = "duration::required")]
    #[schemars(with = "stampede_job::DurationText")]
    pub duration: Duration,
    /// Relative weight of each action (an action not listed has weight 0). Default
    /// kopia's: 1 for each action but `restore-into-data-dir` and `restart-server`.
    #[serde(default)]
    pub weights: Weights,
}

/// Faults between actions. A restart waits until no client is inside an action and holds
/// them back until the server is up again.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Kill the server under test with SIGKILL and start it again after every this many
    /// actions of all clients together (the snapshotter needs a `server` command).
    #[serde(default)]
    pub restart_server_every: Option<u32>,
    /// Restart each client (revoke it on the server, authorize and connect it again)
    /// after every this many of its own actions.
    #[serde(default)]
    pub restart_client_every: Option<u32>,
}

impl RobustnessConfig {
    /// True when the step kills and restarts the server at some point.
    pub(crate) fn restarts_server(&self) -> bool {
        let weighted = |r: &Randomized| {
            r.weights
                .0
                .get(&ActionKind::RestartServer)
                .is_some_and(|&w| w > 0)
        };
        self.faults.restart_server_every.is_some()
            || self
                .body
                .iter()
                .any(|b| b.action == ActionKind::RestartServer)
            || self.randomized.as_ref().is_some_and(weighted)
    }

    /// Problems with the config, as `field: message`.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=256).contains(&self.clients) {
            problems.push("clients: must be between 1 and 256".to_string());
        }
        match (self.body.is_empty(), &self.randomized) {
            (true, None) => problems.push(
                "body: give the actions each client runs (body) or a randomized mode (randomized)"
                    .to_string(),
            ),
            (false, Some(_)) => {
                problems.push("randomized: give either body or randomized, not both".to_string())
            }
            _ => {}
        }
        for (i, entry) in self.body.iter().enumerate() {
            if entry.repeat == 0 {
                problems.push(format!("body[{i}].repeat: must be at least 1"));
            }
        }
        if let Some(r) = &self.randomized {
            if r.duration.is_zero() {
                problems.push("randomized.duration: must be more than zero".to_string());
            }
            if r.weights.0.values().all(|&w| w == 0) {
                problems
                    .push("randomized.weights: give at least one action a weight above 0".into());
            }
        }
        if let Err(e) = self.writer.validate() {
            problems.push(format!("writer: {e}"));
        }
        if self.faults.restart_server_every == Some(0) {
            problems.push("faults.restart_server_every: must be at least 1".to_string());
        }
        if self.faults.restart_client_every == Some(0) {
            problems.push("faults.restart_client_every: must be at least 1".to_string());
        }
        let restarts = self.restarts_server();
        match &self.snapshotter {
            SnapshotterConfig::Command(c) => {
                if let Err(e) = CommandSnapshotter::new((**c).clone()) {
                    problems.push(format!("snapshotter.command: {e}"));
                }
                if restarts && c.server.is_none() {
                    problems.push(
                        "snapshotter.command.server: restarting the server needs the server's command"
                            .to_string(),
                    );
                }
            }
            SnapshotterConfig::Http(h) => {
                if h.url.is_none() && h.server.is_none() {
                    problems.push(
                        "snapshotter.http.url: give the store's URL, or a server command that prints it"
                            .to_string(),
                    );
                }
                if let Some(url) = &h.url
                    && !url.starts_with("http://")
                {
                    problems.push(format!(
                        "snapshotter.http.url: {url:?} is not a plain http://host:port base URL"
                    ));
                }
                if restarts && h.server.is_none() {
                    problems.push(
                        "snapshotter.http.server: restarting the server needs the server's command"
                            .to_string(),
                    );
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAR: &str = r#"command: { repo: /r, snapshot: "tar -C {source} -cf x .", restore: "tar -C {target} -xf {id}", delete: "rm {id}" }"#;

    /// The problems of a config given as YAML lines after `snapshotter`.
    fn check(snapshotter: &str, rest: &str, expected: &[&str]) {
        let yaml = format!("snapshotter: {{ {snapshotter} }}\n{rest}");
        let config: RobustnessConfig = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(config.problems(), expected, "{yaml}");
    }

    #[test]
    fn problems_name_the_field() {
        let body = "body: [{ action: snapshot }]";
        check(TAR, body, &[]);
        check(
            TAR,
            "clients: 0\nbody: [{ action: snapshot, repeat: 0 }]",
            &[
                "clients: must be between 1 and 256",
                "body[0].repeat: must be at least 1",
            ],
        );
        check(
            TAR,
            "",
            &["body: give the actions each client runs (body) or a randomized mode (randomized)"],
        );
        check(
            TAR,
            "body: [{ action: gc }]\nrandomized: { duration: 1s }",
            &["randomized: give either body or randomized, not both"],
        );
        check(
            TAR,
            "randomized: { duration: 1s, weights: { gc: 0 } }",
            &["randomized.weights: give at least one action a weight above 0"],
        );
        check(
            TAR,
            "body: [{ action: restart-server }]",
            &["snapshotter.command.server: restarting the server needs the server's command"],
        );
        check(
            "http: { admin_token: x }",
            "faults: { restart_server_every: 0 }\nbody: [{ action: snapshot }]",
            &[
                "faults.restart_server_every: must be at least 1",
                "snapshotter.http.url: give the store's URL, or a server command that prints it",
                "snapshotter.http.server: restarting the server needs the server's command",
            ],
        );
        check(
            "http: { url: \"https://x:1\" }",
            "writer: { min_file_size: 9, max_file_size: 1 }\nbody: [{ action: snapshot }]",
            &[
                "writer: invalid file writer option: min_file_size is above max_file_size",
                "snapshotter.http.url: \"https://x:1\" is not a plain http://host:port base URL",
            ],
        );
    }
}
