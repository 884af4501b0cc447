//! Kopia's multi-client robustness framework for Stampede: many clients write, delete,
//! snapshot and restore data through one system under test, and every restore must match
//! what was snapshotted, bit for bit.
//!
//! * [`Fingerprint`] records a directory tree (paths, kinds, modes, sizes, SHA-256 of
//!   every file); [`compare`] turns two fingerprints into a [`Report`] of each
//!   [`Difference`], ignoring times, directory sizes, the root's name and ids that were 0.
//! * [`FileWriter`] grows and prunes random file trees ([`WriterOptions`]); "nothing to
//!   do" is an [`Outcome::NoOp`], not an error.
//! * [`Snapshotter`] is the system under test; [`CommandSnapshotter`] drives any backup
//!   tool through shell command templates ([`CommandConfig`]), [`HttpSnapshotter`] the
//!   built-in sut's snapshot store ([`HttpConfig`]). [`Snapshotter::restart_server`]
//!   kills and restarts the server: the `restart-server` action and
//!   [`Harness::restart_server`] inject that fault between actions; [`ServerProcess`] runs
//!   a server under test in its own process group so it can be SIGKILLed and restarted.
//! * [`MetadataStore`] ([`MemoryStore`]) keeps each snapshot's [`SnapshotMeta`] and
//!   fingerprint.
//! * [`Client`] runs [`ActionKind`]s by name or picked by [`Weights`], keeps [`Stats`],
//!   and checks every restore; [`Harness`] runs a body for N clients at once and reports
//!   per client in a [`HarnessReport`].
//! * [`step::Robustness`] — the `robustness` job step: the harness on a job's target,
//!   snapshot metadata kept as `RobustnessSnapshot` events; see docs/design/005.
//!
//! ```no_run
//! use std::sync::Arc;
//! use stampede_robust::{
//!     ActionKind, CommandConfig, CommandSnapshotter, Harness, MemoryStore,
//! };
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CommandConfig::new(
//!     "/tmp/repo",
//!     "id=$(date +%s%N); tar -C {source} -cf {repo}/$id.tar . && echo $id",
//!     "tar -C {target} -xf {repo}/{id}.tar",
//!     "rm {repo}/{id}.tar",
//! );
//! let snapshotter = Arc::new(CommandSnapshotter::new(config)?);
//! let harness = Harness::new("/tmp/robust", snapshotter, Arc::new(MemoryStore::new()), 42);
//! let report = harness
//!     .run_n(4, async |client| {
//!         client.exec(ActionKind::WriteFiles).await?;
//!         client.exec(ActionKind::Snapshot).await?;
//!         client.exec(ActionKind::RestoreCompare).await?;
//!         Ok(())
//!     })
//!     .await;
//! assert!(report.is_success(), "{report}");
//! # Ok(())
//! # }
//! ```

mod action;
mod client;
mod fingerprint;
mod harness;
mod outcome;
mod pathlock;
mod server;
mod snapshotter;
pub mod step;
mod store;
mod writer;

pub use action::{ActionKind, ActionStats, RunResult, Stats, Weights};
pub use client::{ActionError, Client};
pub use fingerprint::{
    Change, Difference, Entry, EntryKind, Fingerprint, FingerprintError, Report, compare,
};
pub use harness::{ClientReport, Harness, HarnessReport, RepoCheck, VerifyReport};
pub use outcome::Outcome;
pub use server::{ServerProcess, restart_hook};
pub use snapshotter::{
    ClientId, CommandConfig, CommandSnapshotter, DEFAULT_ID_PATTERN, HttpConfig, HttpSnapshotter,
    RestartHook, SnapshotError, SnapshotId, Snapshotter, shell_quote,
};
pub use store::{MemoryStore, MetadataStore, SnapshotMeta, StoreError};
pub use writer::{DeleteStats, FileWriter, WriteStats, WriterError, WriterOptions};

/// The seeded RNG the framework uses: small, fast and the same sequence on every platform
/// for a given seed, so a failing run can be replayed.
pub type Rng = rand::rngs::Xoshiro256PlusPlus;
