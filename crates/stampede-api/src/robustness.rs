//! The robustness step's serialized types: the record of each snapshot it took (so a
//! later run can restore and check it) and its statistics, as event payloads and in the
//! run summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Payload of `RobustnessSnapshot`: a snapshot a client took, or (with `deleted_us`) its
/// deletion. The latest record of an id wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The snapshotter's id of the snapshot.
    pub id: String,
    /// The client that took it.
    pub client: String,
    /// When the snapshot command started, in microseconds since the Unix epoch.
    pub start_us: u64,
    /// When it returned.
    pub end_us: u64,
    /// The fingerprint of the data just before the snapshot (stampede-robust's
    /// `Fingerprint` document: `{"entries": [{"path", "kind", "mode", "uid", "gid",
    /// "size", "mtime_ns", "sha256"?, "link_target"?}]}`); absent once deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<serde_json::Value>,
    /// When the snapshot was deleted; absent while it is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_us: Option<u64>,
}

/// How one action's runs went (count, errors, no-ops, run times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStats {
    /// Runs, whatever their result.
    pub count: u64,
    /// Runs that failed.
    pub errors: u64,
    /// Runs that had nothing to do.
    pub no_ops: u64,
    /// Sum of run times, in microseconds.
    pub total_us: u64,
    /// Shortest run, in microseconds.
    pub min_us: u64,
    /// Longest run, in microseconds.
    pub max_us: u64,
}

/// One client's statistics, by action name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStats {
    /// The client's identity.
    pub client: String,
    /// Per action name (`snapshot`, `restore-compare`, ...).
    pub actions: BTreeMap<String, ActionStats>,
    /// Why the client failed; absent when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Payload of `RobustnessStats`: what one robustness step did on one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RobustnessStats {
    /// True when no client failed and every snapshot checked restored as taken.
    pub passed: bool,
    /// The seed the clients' choices came from; the same seed replays them.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: u32,
    /// How long the step ran, in seconds.
    pub elapsed_s: f64,
    /// Actions run by all clients (faults included).
    pub actions: u64,
    /// Restores compared with their fingerprint and found equal.
    pub snapshots_verified: u64,
    /// Of those, snapshots recorded by an earlier run of the step.
    #[serde(default)]
    pub earlier_verified: u64,
    /// Times the server under test was killed and restarted.
    pub server_restarts: u64,
    /// Every action of every client together, by action name.
    pub total: BTreeMap<String, ActionStats>,
    /// Per client.
    pub per_client: Vec<ClientStats>,
    /// What failed, one readable report each (the damaged files named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Directories kept for inspection because something failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_dirs: Vec<String>,
}

/// One robustness step's statistics with its name, in the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessSummary {
    /// `test/step`.
    pub name: String,
    /// The target it ran on.
    pub target: String,
    /// What it did.
    #[serde(flatten)]
    pub stats: RobustnessStats,
}
