//! The system under test, seen from the framework: a [`Snapshotter`] takes snapshots of a
//! directory, restores them, lists and deletes them and collects garbage, on behalf of a
//! [`ClientId`]. Implementations: [`CommandSnapshotter`] (shell command templates, so tar,
//! rsync, restic or kopia can be driven) and [`HttpSnapshotter`] (the snapshot store of
//! the built-in system under test). [`Snapshotter::restart_server`] is the fault hook:
//! kill the server and start it again, between actions.
//!
//! Client identity is an explicit argument rather than ambient context: the same value
//! kopia kept in a `context.Context`, without a lookup that can fail.

mod command;
mod http;

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

pub use command::{CommandConfig, CommandSnapshotter, DEFAULT_ID_PATTERN, shell_quote};
pub use http::{HttpConfig, HttpSnapshotter, RestartHook};

/// A client's identity, unique within a run (`client-<index>-<random hex>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A snapshot's id, as the snapshotter reported it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(pub String);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a snapshotter operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshotter's configuration cannot be used.
    #[error("invalid snapshotter configuration: {0}")]
    Config(String),
    /// This snapshotter has no way to do `op` (e.g. no `gc` command configured).
    #[error("the snapshotter does not support {op}")]
    Unsupported {
        /// The operation.
        op: &'static str,
    },
    /// The command could not be started.
    #[error("{op}: cannot run `{command}`: {source}")]
    Spawn {
        /// The operation.
        op: &'static str,
        /// The expanded command line.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The command did not finish in time and was killed.
    #[error("{op}: `{command}` did not finish within {after:?} and was killed")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The expanded command line.
        command: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The command exited unsuccessfully.
    #[error("{op}: `{command}` failed ({status}): {stderr}")]
    Failed {
        /// The operation.
        op: &'static str,
        /// The expanded command line.
        command: String,
        /// The exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The snapshot command succeeded but printed no id matching the pattern.
    #[error(
        "snapshot: `{command}` printed no line matching id_pattern `{pattern}`; stdout was: {stdout:?}"
    )]
    NoId {
        /// The expanded command line.
        command: String,
        /// The id pattern.
        pattern: String,
        /// The end of its standard output.
        stdout: String,
    },
    /// An HTTP snapshot store answered with an error status.
    #[error("{op}: {request} answered {status}: {body}")]
    Http {
        /// The operation.
        op: &'static str,
        /// Method and URL.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body, which says why.
        body: String,
    },
    /// Any other failure of a non-command snapshotter.
    #[error("{op}: {message}")]
    Other {
        /// The operation.
        op: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// The system under test. Every method takes `&self`: one snapshotter serves all clients
/// concurrently. The hooks have no-op defaults.
pub trait Snapshotter: Send + Sync + 'static {
    /// Starts the shared server, once, before any client connects.
    fn start_server(&self) -> impl Future<Output = Result<(), SnapshotError>> + Send {
        async { Ok(()) }
    }

    /// Lets `client` use the server (kopia's `server user add`).
    fn authorize_client(
        &self,
        client: &ClientId,
    ) -> impl Future<Output = Result<(), SnapshotError>> + Send {
        let _ = client;
        async { Ok(()) }
    }

    /// Connects `client` to the repository; called once after authorizing it.
    fn connect(&self, client: &ClientId) -> impl Future<Output = Result<(), SnapshotError>> + Send {
        let _ = client;
        async { Ok(()) }
    }

    /// Takes a snapshot of `source` for `client` and returns its id.
    fn snapshot(
        &self,
        client: &ClientId,
        source: &Path,
    ) -> impl Future<Output = Result<SnapshotId, SnapshotError>> + Send;

    /// Restores snapshot `id` into the existing directory `target`.
    fn restore(
        &self,
        client: &ClientId,
        id: &SnapshotId,
        target: &Path,
    ) -> impl Future<Output = Result<(), SnapshotError>> + Send;

    /// The ids of the snapshots the repository holds, as `client` sees them.
    fn list(
        &self,
        client: &ClientId,
    ) -> impl Future<Output = Result<Vec<SnapshotId>, SnapshotError>> + Send;

    /// Deletes snapshot `id`.
    fn delete(
        &self,
        client: &ClientId,
        id: &SnapshotId,
    ) -> impl Future<Output = Result<(), SnapshotError>> + Send;

    /// Collects garbage on the server side (clients are not authorized to).
    fn gc(&self) -> impl Future<Output = Result<Outcome<()>, SnapshotError>> + Send;

    /// Kills the server under test and starts it again on the same data (fault
    /// injection); returns once it is back. `NoOp` when the snapshotter cannot.
    fn restart_server(&self) -> impl Future<Output = Result<Outcome<()>, SnapshotError>> + Send {
        async { Ok(Outcome::noop("the snapshotter cannot restart its server")) }
    }

    /// Revokes `client` (kopia's `server user delete`), at cleanup.
    fn remove_client(
        &self,
        client: &ClientId,
    ) -> impl Future<Output = Result<(), SnapshotError>> + Send {
        let _ = client;
        async { Ok(()) }
    }
}
