//! Samples: what one call did, and why a scheduled call was not made.

use std::fmt;
use std::time::{Duration, Instant};

/// Why a call failed. Every failure is a counted sample with its kind (SPEC invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Failure {
    /// The connection could not be opened (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed: most often a certificate the client does not trust.
    Tls,
    /// The call did not finish within its timeout.
    Timeout,
    /// The peer closed or reset the connection in the middle of the exchange.
    Reset,
    /// The response arrived with a status the checks do not accept.
    Status(u16),
    /// The response arrived but a body check failed.
    Check,
    /// Anything else the action reported as an error.
    Other,
}

impl Failure {
    /// A short, stable name for reports and JSON: `connect`, `tls`, `timeout`, `reset`,
    /// `status`, `check`, `other`.
    pub const fn kind(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Tls => "tls",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::Status(_) => "status",
            Failure::Check => "check",
            Failure::Other => "other",
        }
    }

    /// The failure a report names: a [`kind`](Failure::kind), or `status N` for a status
    /// failure (the form summaries use). `None` for anything else.
    pub fn from_name(name: &str) -> Option<Failure> {
        Some(match name {
            "connect" => Failure::Connect,
            "tls" => Failure::Tls,
            "timeout" => Failure::Timeout,
            "reset" => Failure::Reset,
            "check" => Failure::Check,
            "other" => Failure::Other,
            _ => Failure::Status(name.strip_prefix("status ")?.parse().ok()?),
        })
    }

    /// The name [`from_name`](Failure::from_name) reads: the kind, with the code for a
    /// status failure.
    pub fn name(self) -> String {
        match self {
            Failure::Status(code) => format!("status {code}"),
            other => other.kind().to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect => f.write_str("connection failed"),
            Failure::Tls => f.write_str("TLS handshake failed"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Reset => f.write_str("connection reset"),
            Failure::Status(code) => write!(f, "bad status {code}"),
            Failure::Check => f.write_str("check failed"),
            Failure::Other => f.write_str("error"),
        }
    }
}

/// The result of one call.
pub type Outcome = Result<(), Failure>;

/// One finished call, with the three instants the three latency views come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the schedule meant the call to start (open model), or when the virtual user
    /// started it (closed model).
    pub intended: Instant,
    /// When the request actually went out (after waiting for a free connection, say).
    pub sent: Instant,
    /// When the call ended, with or without success.
    pub done: Instant,
    /// Success, or why not.
    pub outcome: Outcome,
}

impl Sample {
    /// Response time from the intended start: what a user of the service felt. This is the
    /// coordinated-omission-corrected view.
    pub fn response_time(&self) -> Duration {
        self.done.saturating_duration_since(self.intended)
    }

    /// Service time: from the request going out to the call ending.
    pub fn service_time(&self) -> Duration {
        self.done.saturating_duration_since(self.sent)
    }

    /// Schedule lag: from the intended start to the request going out.
    pub fn lag(&self) -> Duration {
        self.sent.saturating_duration_since(self.intended)
    }
}

/// Why a scheduled call was never made. Dropped calls are counted, never silently lost:
/// sent + dropped = scheduled, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// The tick found every concurrency slot taken (pusher's `canceled`).
    NoSlot,
    /// The generator itself woke up too late for the tick (a late loop never bursts to
    /// catch up).
    Late,
}

impl DropReason {
    /// A short, stable name for reports and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NoSlot => "no_slot",
            DropReason::Late => "late",
        }
    }

    /// The reason [`name`](DropReason::name) names, or `None`.
    pub fn from_name(name: &str) -> Option<DropReason> {
        match name {
            "no_slot" => Some(DropReason::NoSlot),
            "late" => Some(DropReason::Late),
            _ => None,
        }
    }
}

/// Where the engine writes what happened, on the thread where it happened. Implementations
/// keep per-thread state (for example HDR histograms) and are merged elsewhere, so
/// recording never takes a lock.
pub trait Sink {
    /// A call took a slot and is starting (so `started - finished` is the number in
    /// flight). Most sinks ignore it.
    fn started(&self, _intended: Instant) {}
    /// A call finished.
    fn record(&self, sample: &Sample);
    /// A call that started was cut off before it finished (the hard stop), so it has no
    /// sample. Most sinks ignore it.
    fn interrupted(&self, _intended: Instant) {}
    /// A scheduled call was not made.
    fn dropped(&self, intended: Instant, reason: DropReason);
}

/// The sink that forgets everything, for callers that only want gossip.
impl Sink for () {
    fn record(&self, _: &Sample) {}
    fn dropped(&self, _: Instant, _: DropReason) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_and_drop_names_read_back() {
        let failures = [
            Failure::Connect,
            Failure::Timeout,
            Failure::Reset,
            Failure::Status(503),
            Failure::Check,
            Failure::Other,
        ];
        for failure in failures {
            assert_eq!(Failure::from_name(&failure.name()), Some(failure));
        }
        for bad in ["status", "status x", "status 70000", "", "Connect"] {
            assert_eq!(Failure::from_name(bad), None, "{bad:?}");
        }
        for reason in [DropReason::NoSlot, DropReason::Late] {
            assert_eq!(DropReason::from_name(reason.name()), Some(reason));
        }
        assert_eq!(DropReason::from_name("early"), None);
    }

    #[test]
    fn three_views_come_from_three_instants() {
        let t0 = Instant::now();
        let s = Sample {
            intended: t0,
            sent: t0 + Duration::from_millis(3),
            done: t0 + Duration::from_millis(10),
            outcome: Ok(()),
        };
        assert_eq!(s.lag(), Duration::from_millis(3));
        assert_eq!(s.service_time(), Duration::from_millis(7));
        assert_eq!(s.response_time(), Duration::from_millis(10));
    }

    #[test]
    fn failure_kinds_are_stable_names() {
        assert_eq!(Failure::Status(503).kind(), "status");
        assert_eq!(Failure::Status(503).to_string(), "bad status 503");
        assert_eq!(DropReason::NoSlot.name(), "no_slot");
    }
}
