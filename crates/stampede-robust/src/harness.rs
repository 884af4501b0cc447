//! The multi-client [`Harness`]: runs one test body for N clients concurrently, each with
//! a unique identity and its own data and scratch directories, authorized on and
//! connected to the shared snapshotter first and removed from it after. A client that
//! passed leaves nothing behind; one that failed keeps its directories and names them in
//! the [`HarnessReport`], so they can be logged or attached to the job.
//!
//! Faults: [`Harness::restart_server`] (or a client's `restart-server` action) kills and
//! restarts the server under test while no client is inside an action.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::RwLock;

use crate::action::Stats;
use crate::client::{ActionError, Client};
use crate::outcome::Outcome;
use crate::snapshotter::{ClientId, SnapshotError, SnapshotId, Snapshotter};
use crate::store::{MetadataStore, StoreError};
use crate::writer::{FileWriter, WriterOptions};

/// Runs test bodies for many clients against one snapshotter and one metadata store.
#[derive(Debug)]
pub struct Harness<S, M> {
    base: PathBuf,
    snapshotter: Arc<S>,
    store: Arc<M>,
    writer_options: WriterOptions,
    seed: u64,
    gate: Arc<RwLock<()>>,
}

/// How one client's body went.
#[derive(Debug)]
pub struct ClientReport {
    /// The client's identity.
    pub client: ClientId,
    /// `Err` with the first error of setup, body or cleanup.
    pub result: Result<(), ActionError>,
    /// Its per-action statistics.
    pub stats: Stats,
    /// Directories worth logging: kept because the client failed (empty on success).
    pub kept_dirs: Vec<PathBuf>,
}

/// What [`Harness::run_n`] found, one entry per client in index order.
#[derive(Debug)]
pub struct HarnessReport {
    /// The seed the clients' RNGs were derived from; the same seed replays their choices.
    pub seed: u64,
    /// One report per client.
    pub clients: Vec<ClientReport>,
}

impl HarnessReport {
    /// True when every client's body and cleanup succeeded.
    pub fn is_success(&self) -> bool {
        self.clients.iter().all(|c| c.result.is_ok())
    }

    /// The clients that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ClientReport> {
        self.clients.iter().filter(|c| c.result.is_err())
    }

    /// All clients' statistics merged.
    pub fn stats(&self) -> Stats {
        let mut all = Stats::default();
        for c in &self.clients {
            all.merge(&c.stats);
        }
        all
    }
}

impl fmt::Display for HarnessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        writeln!(
            f,
            "{} clients, {failed} failed (seed {})",
            self.clients.len(),
            self.seed
        )?;
        for c in self.failures() {
            if let Err(e) = &c.result {
                writeln!(f, "client {} failed: {e}", c.client)?;
            }
            for dir in &c.kept_dirs {
                writeln!(f, "  kept {}", dir.display())?;
            }
        }
        write!(f, "{}", self.stats())
    }
}

impl<S: Snapshotter, M: MetadataStore> Harness<S, M> {
    /// A harness whose client directories go under `base` and whose clients' RNGs derive
    /// from `seed`.
    pub fn new(base: impl Into<PathBuf>, snapshotter: Arc<S>, store: Arc<M>, seed: u64) -> Self {
        Self {
            base: base.into(),
            snapshotter,
            store,
            writer_options: WriterOptions::default(),
            seed,
            gate: Arc::default(),
        }
    }

    /// Options for every client's file writer.
    pub fn with_writer_options(mut self, options: WriterOptions) -> Self {
        self.writer_options = options;
        self
    }

    /// The shared snapshotter.
    pub fn snapshotter(&self) -> &Arc<S> {
        &self.snapshotter
    }

    /// The shared metadata store.
    pub fn store(&self) -> &Arc<M> {
        &self.store
    }

    /// Runs `body` for `n` fresh clients concurrently (kopia's `RunN`), then cleans each up.
    ///
    /// The bodies run as concurrent futures on the calling task; their file-system work
    /// and the snapshotter's commands run on blocking threads and child processes.
    pub async fn run_n<F>(&self, n: usize, body: F) -> HarnessReport
    where
        F: AsyncFn(&mut Client<S, M>) -> Result<(), ActionError>,
    {
        let body = &body;
        let runs = (0..n).map(|i| async move {
            let id = ClientId(format!("client-{i}-{}", random_hex()));
            let home = self.base.join(&id.0);
            let mut client = match self.setup(&id, i, &home).await {
                Ok(c) => c,
                Err(e) => {
                    return ClientReport {
                        client: id,
                        result: Err(e),
                        stats: Stats::default(),
                        kept_dirs: vec![home],
                    };
                }
            };
            let mut result = body(&mut client).await;
            let removed = {
                let _shared = self.gate.read().await;
                self.snapshotter.remove_client(&id).await
            };
            if let (Ok(()), Err(e)) = (&result, removed) {
                result = Err(e.into());
            }
            let mut kept_dirs = Vec::new();
            if result.is_ok() {
                if let Err(source) = std::fs::remove_dir_all(&home) {
                    let path = home.clone();
                    result = Err(crate::writer::WriterError::Io {
                        action: "clean up",
                        path,
                        source,
                    }
                    .into());
                }
            } else {
                kept_dirs.push(client.data_dir().to_path_buf());
                kept_dirs.extend(client.kept_dirs().iter().cloned());
            }
            ClientReport {
                client: id,
                result,
                stats: client.stats().clone(),
                kept_dirs,
            }
        });
        HarnessReport {
            seed: self.seed,
            clients: join_all(runs).await,
        }
    }

    /// Starts the shared server ([`Snapshotter::start_server`]); call it once, before the
    /// first [`Harness::run_n`].
    pub async fn start_server(&self) -> Result<(), SnapshotError> {
        self.snapshotter.start_server().await
    }

    /// Kills and restarts the server under test ([`Snapshotter::restart_server`]) once no
    /// client is inside an action, holding them back until it is up again.
    pub async fn restart_server(&self) -> Result<Outcome<()>, SnapshotError> {
        let _alone = self.gate.write().await;
        self.snapshotter.restart_server().await
    }

    /// Compares the live snapshots in the metadata store with those the repository lists
    /// for `as_client` (kopia's `VerifySnapshotMetadata`, reporting only). Run it when no
    /// client is active, e.g. before or after [`Harness::run_n`].
    pub async fn verify_repository(&self, as_client: &ClientId) -> Result<RepoCheck, ActionError> {
        let mut live = self.store.live(None).await?;
        let mut listed = self.snapshotter.list(as_client).await?;
        live.sort();
        listed.sort();
        let missing_from_repo = live
            .iter()
            .filter(|id| listed.binary_search(id).is_err())
            .cloned()
            .collect();
        let unknown_to_metadata = listed
            .iter()
            .filter(|id| live.binary_search(id).is_err())
            .cloned()
            .collect();
        Ok(RepoCheck {
            missing_from_repo,
            unknown_to_metadata,
        })
    }

    /// Restores every live snapshot in the metadata store, each as the client that took it
    /// (authorized again, then removed), and compares it with its fingerprint: what was
    /// acknowledged before a crash, or in an earlier run, must still be there. A failure is
    /// collected, not returned, so one bad snapshot does not hide the others; `Err` is for
    /// a store or client setup that fails. Run it when no client is active.
    pub async fn verify_live(&self) -> Result<VerifyReport, ActionError> {
        let mut by_client: BTreeMap<ClientId, Vec<SnapshotId>> = BTreeMap::new();
        for id in self.store.live(None).await? {
            // A live id without its record would be a snapshot nobody checks: an error,
            // never a skip.
            let meta = self.store.get(&id).await?.ok_or_else(|| {
                StoreError::Backend(format!(
                    "snapshot {id} is listed as live but has no record, so it cannot be checked"
                ))
            })?;
            by_client.entry(meta.client).or_default().push(id);
        }
        let mut report = VerifyReport::default();
        for (index, (client_id, ids)) in by_client.into_iter().enumerate() {
            let home = self.base.join(format!("verify-{client_id}"));
            let mut client = self.setup(&client_id, index, &home).await?;
            for id in ids {
                match client.restore_compare(Some(id)).await {
                    Ok(Outcome::Done(())) => report.verified += 1,
                    Ok(Outcome::NoOp(_)) => {}
                    Err(e) => report.failures.push(e),
                }
            }
            {
                let _shared = self.gate.read().await;
                self.snapshotter.remove_client(&client_id).await?;
            }
            if client.kept_dirs().is_empty() {
                // Only restores that matched were here; nothing worth keeping.
                let _ = std::fs::remove_dir_all(&home);
            }
            report.kept_dirs.extend(client.kept_dirs().iter().cloned());
        }
        Ok(report)
    }

    async fn setup(
        &self,
        id: &ClientId,
        index: usize,
        home: &std::path::Path,
    ) -> Result<Client<S, M>, ActionError> {
        let writer = FileWriter::new(home.join("data"), self.writer_options.clone())?;
        // Spread the clients' seeds so no two clients make the same choices.
        let seed = self.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut client = Client::new(
            id.clone(),
            writer,
            home.join("restores"),
            self.snapshotter.clone(),
            self.store.clone(),
            seed,
        )?;
        client.set_gate(self.gate.clone());
        // Like actions, setup never overlaps a restart of the server.
        let _shared = self.gate.read().await;
        self.snapshotter.authorize_client(id).await?;
        self.snapshotter.connect(id).await?;
        Ok(client)
    }
}

/// What [`Harness::verify_live`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Snapshots restored and found equal to their fingerprint.
    pub verified: u64,
    /// The snapshots that were not, with why (a mismatch names every damaged file).
    pub failures: Vec<ActionError>,
    /// Directories kept for inspection.
    pub kept_dirs: Vec<PathBuf>,
}

/// Live snapshots the metadata and the repository disagree about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoCheck {
    /// Live in the metadata, absent from the repository: the system under test lost them.
    pub missing_from_repo: Vec<SnapshotId>,
    /// In the repository but not live in the metadata (left by an earlier run, or deleted
    /// snapshots the system under test still lists).
    pub unknown_to_metadata: Vec<SnapshotId>,
}

impl RepoCheck {
    /// True when both lists are empty.
    pub fn is_consistent(&self) -> bool {
        self.missing_from_repo.is_empty() && self.unknown_to_metadata.is_empty()
    }
}

/// Eight random hex digits, so ids from different runs never collide.
fn random_hex() -> String {
    let mut bytes = [0u8; 4];
    // An id without the random part is still unique within the run.
    if getrandom::fill(&mut bytes).is_err() {
        return "0".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
