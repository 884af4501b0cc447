//! What the CLI and tests may choose about the server, and the checks run before it starts.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::SutError;
use crate::WorkspaceConfig;

/// How to run the system under test.
///
/// Build it with struct-update syntax so new fields keep old code compiling:
/// `Config { stall_every: Some(Duration::from_secs(1)), stall_for: Duration::from_millis(200), ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on; port 0 picks any free port (read it back with
    /// [`Server::local_addr`](crate::Server::local_addr)). Default `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// Period of stall windows: when set, the whole server answers nothing during
    /// `[k*every, k*every + stall_for)` after start, for k = 1, 2, ... Default: never stall.
    pub stall_every: Option<Duration>,
    /// Length of each stall window; must be above zero and below `stall_every`.
    /// Ignored when `stall_every` is `None`.
    pub stall_for: Duration,
    /// Serve HTTPS with a self-signed certificate for `localhost` and `127.0.0.1`,
    /// generated at start (ALPN `h2` and `http/1.1`). Default false: plain HTTP/1.1 and h2c.
    pub tls: bool,
    /// Worker threads of the server's own runtime; 0 means one per available core.
    pub threads: usize,
    /// The workspace service under `/ws/`: provisioner pool, build time, failure rate, seed.
    pub workspaces: WorkspaceConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            stall_every: None,
            stall_for: Duration::ZERO,
            tls: false,
            threads: 0,
            workspaces: WorkspaceConfig::default(),
        }
    }
}

impl Config {
    /// Checks that the values make sense together; [`Server::start`](crate::Server::start)
    /// calls it too.
    pub fn validate(&self) -> Result<(), SutError> {
        self.workspaces.validate()?;
        let Some(every) = self.stall_every else {
            return Ok(());
        };
        if every.is_zero() {
            return Err(SutError::InvalidConfig {
                field: "stall_every",
                reason: "must be above zero; leave it unset to never stall".to_owned(),
            });
        }
        if self.stall_for.is_zero() {
            return Err(SutError::InvalidConfig {
                field: "stall_for",
                reason: format!(
                    "must be above zero when stall_every is set ({every:?}); leave stall_every unset to never stall"
                ),
            });
        }
        if self.stall_for >= every {
            return Err(SutError::InvalidConfig {
                field: "stall_for",
                reason: format!(
                    "{:?} is not shorter than stall_every ({every:?}); the server would never answer",
                    self.stall_for
                ),
            });
        }
        Ok(())
    }

    /// The worker count to give the runtime.
    pub(crate) fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall(every_ms: Option<u64>, for_ms: u64) -> Config {
        Config {
            stall_every: every_ms.map(Duration::from_millis),
            stall_for: Duration::from_millis(for_ms),
            ..Config::default()
        }
    }

    fn check(config: Config, bad_field: Option<&str>) {
        match (config.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(SutError::InvalidConfig { field, .. }), Some(want)) => assert_eq!(field, want),
            (got, want) => panic!("{config:?}: got {got:?}, wanted error on {want:?}"),
        }
    }

    #[test]
    fn validation() {
        check(Config::default(), None);
        check(stall(None, 5_000), None);
        check(stall(Some(400), 200), None);
        check(stall(Some(0), 0), Some("stall_every"));
        check(stall(Some(400), 0), Some("stall_for"));
        check(stall(Some(400), 400), Some("stall_for"));
        check(stall(Some(400), 500), Some("stall_for"));
    }

    #[test]
    fn error_message_names_the_field_and_values() {
        let err = stall(Some(400), 400).validate().unwrap_err().to_string();
        assert!(err.contains("stall_for") && err.contains("400ms"), "{err}");
    }

    #[test]
    fn default_binds_loopback_any_port() {
        let config = Config::default();
        assert_eq!(config.addr.to_string(), "127.0.0.1:0");
        assert!(config.worker_threads() >= 1);
        assert_eq!(
            Config {
                threads: 3,
                ..config
            }
            .worker_threads(),
            3
        );
    }
}
