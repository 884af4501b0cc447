//! `wait_port`: connects to a port again and again until it answers or the timeout passes
//! (ConTest's `waitport`). UDP has no handshake, so a UDP "connection" succeeds at once, as
//! in Go.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::{TcpStream, UdpSocket, lookup_host};

use crate::duration;
use crate::step::{Capability, Problem, Step, StepCtx, StepError, StepOutcome, Use};

/// Waits until a port accepts connections.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitPortConfig {
    /// The host to connect to (a template, e.g. `{{ target.host }}`).
    pub host: String,
    /// The port, 1 to 65535.
    pub port: u16,
    /// `tcp` (default), `tcp4`, `tcp6`, `udp`, `udp4` or `udp6`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// How long to wait between attempts (default 1s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<crate::duration::DurationText>")]
    pub check_interval: Option<Duration>,
    /// Give up and fail the target after this long (default 1m).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<crate::duration::DurationText>")]
    pub timeout: Option<Duration>,
}

fn tcp() -> String {
    "tcp".into()
}

const PROTOCOLS: [&str; 6] = ["tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"];

impl WaitPortConfig {
    /// Problems with the config, as `field: message`.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.port == 0 {
            problems.push("port: must be between 1 and 65535".to_string());
        }
        if !PROTOCOLS.contains(&self.protocol.as_str()) {
            problems.push(format!(
                "protocol: {:?} is not one of {}",
                self.protocol,
                PROTOCOLS.join(", ")
            ));
        }
        if self.host.trim().is_empty() {
            problems.push("host: give the host to connect to".to_string());
        }
        if self.check_interval == Some(Duration::ZERO) {
            problems.push("check_interval: must be more than zero".to_string());
        }
        problems
    }
}

async fn attempt(config: &WaitPortConfig) -> Result<(), String> {
    let wants = |addr: &std::net::SocketAddr| match config.protocol.as_str() {
        "tcp4" | "udp4" => addr.is_ipv4(),
        "tcp6" | "udp6" => addr.is_ipv6(),
        _ => true,
    };
    let addrs: Vec<_> = lookup_host((config.host.as_str(), config.port))
        .await
        .map_err(|e| e.to_string())?
        .filter(wants)
        .collect();
    let mut last = format!("{} has no address for {}", config.host, config.protocol);
    for addr in addrs {
        let result = if config.protocol.starts_with("udp") {
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            match UdpSocket::bind(local).await {
                Ok(socket) => socket.connect(addr).await,
                Err(e) => Err(e),
            }
        } else {
            TcpStream::connect(addr).await.map(drop)
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Waits until a port answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitPort;

impl Step for WaitPort {
    type Config = WaitPortConfig;
    const KEY: &'static str = "wait_port";
    const SUMMARY: &'static str = "Wait until a port accepts connections.";
    const NEEDS: &'static [Capability] = &[Capability::Network];

    fn problems(&self, config: &WaitPortConfig, at: &str) -> Vec<Problem> {
        Problem::all_under(at, &config.problems())
    }

    fn uses(&self, config: &WaitPortConfig) -> Vec<Use> {
        vec![Use::connect("host", &config.host)]
    }

    async fn run(
        &self,
        config: &WaitPortConfig,
        ctx: &StepCtx<'_>,
    ) -> Result<StepOutcome, StepError> {
        run(config, ctx).await
    }
}

async fn run(config: &WaitPortConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
    let timeout = config.timeout.unwrap_or(Duration::from_secs(60));
    let interval = config.check_interval.unwrap_or(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let tried = tokio::select! {
            tried = tokio::time::timeout_at(deadline, attempt(config)) => tried,
            () = ctx.cancel.cancelled() => {
                return Ok(StepOutcome::Failed("cancelled while waiting for the port".into()));
            }
        };
        let error = match tried {
            Ok(Ok(())) => return Ok(StepOutcome::passed()),
            Ok(Err(e)) => e,
            Err(_) => "the last attempt did not finish".to_string(),
        };
        let next = tokio::time::Instant::now() + interval;
        if next >= deadline {
            return Ok(StepOutcome::Failed(format!(
                "{}:{} ({}) did not answer within {}: {error}",
                config.host,
                config.port,
                config.protocol,
                humantime::format_duration(timeout)
            )));
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = ctx.cancel.cancelled() => return Ok(StepOutcome::Failed("cancelled while waiting for the port".into())),
        }
    }
}
