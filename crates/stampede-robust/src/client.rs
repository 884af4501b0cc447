//! One robustness client: an identity, a data directory changed by a [`FileWriter`], the
//! shared [`Snapshotter`] and [`MetadataStore`], a seeded RNG and its [`Stats`]. It runs
//! actions one at a time — by name, repeated, or picked at random by weight for a duration
//! — and is the checker: every snapshot records a fingerprint, every restore is compared.
//!
//! Actions run under a gate shared by the harness's clients: `restart-server` takes it
//! alone, every other action shares it, so a fault never cuts another client's action.
//!
//! A client restores and deletes only its own snapshots, so another client's delete can
//! never race its restore; the cross-client invariant is still exercised because all
//! clients share one repository, server and garbage collection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};
use tokio::sync::RwLock;
use tokio::time::Instant;

use crate::action::{ActionKind, RunResult, Stats, Weights};
use crate::fingerprint::{self, Fingerprint, FingerprintError, Report};
use crate::outcome::Outcome;
use crate::snapshotter::{ClientId, SnapshotError, SnapshotId, Snapshotter};
use crate::store::{MetadataStore, SnapshotMeta, StoreError};
use crate::writer::{FileWriter, WriterError};

/// Why an action failed. No-ops are not errors: see [`Outcome`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The file writer failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A directory could not be fingerprinted.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A restored snapshot differs from the data it was taken of: the system under test
    /// lost or changed data.
    #[error(
        "snapshot {id} of {client} restored into {} does not match its fingerprint \
         (files were modified, added or deleted): {report}", restored_into.display()
    )]
    Mismatch {
        /// The snapshot.
        id: SnapshotId,
        /// The client that took and restored it.
        client: ClientId,
        /// Where it was restored (kept for inspection).
        restored_into: PathBuf,
        /// Every difference.
        report: Report,
    },
    /// An acknowledged snapshot cannot be restored or deleted (lost in a crash, deleted
    /// behind the checker's back, or the server is gone): the files it held are named.
    #[error(
        "snapshot {id} of {client} was acknowledged but cannot be {op}, so its {files} \
         files may be lost ({sample}): {source}"
    )]
    Lost {
        /// The snapshot.
        id: SnapshotId,
        /// The client that took it.
        client: ClientId,
        /// What failed: `restored` or `deleted`.
        op: &'static str,
        /// How many regular files its fingerprint lists.
        files: usize,
        /// The first few of them, comma-separated (`and N more` after them).
        sample: String,
        /// Why the operation failed.
        source: Box<SnapshotError>,
    },
    /// The metadata of a live snapshot has no fingerprint to compare with.
    #[error("snapshot {0} has no recorded fingerprint to compare a restore with")]
    MissingFingerprint(SnapshotId),
    /// Every weight is 0, so no action can be picked.
    #[error("no action picked: every action weight is 0")]
    NoActionPicked,
    /// A file-system task on a blocking thread panicked or was cancelled.
    #[error("a blocking file-system task did not finish: {0}")]
    Join(String),
}

/// One client of a robustness run. See the module docs.
#[derive(Debug)]
pub struct Client<S, M> {
    id: ClientId,
    writer: FileWriter,
    scratch: PathBuf,
    snapshotter: Arc<S>,
    store: Arc<M>,
    rng: Xoshiro256PlusPlus,
    stats: Stats,
    kept: Vec<PathBuf>,
    gate: Arc<RwLock<()>>,
}

impl<S: Snapshotter, M: MetadataStore> Client<S, M> {
    /// A client whose restores go to fresh directories under `scratch` (created if
    /// missing) and whose choices all come from `seed`.
    pub fn new(
        id: ClientId,
        writer: FileWriter,
        scratch: impl Into<PathBuf>,
        snapshotter: Arc<S>,
        store: Arc<M>,
        seed: u64,
    ) -> Result<Self, ActionError> {
        let scratch = scratch.into();
        std::fs::create_dir_all(&scratch).map_err(|source| WriterError::Io {
            action: "create",
            path: scratch.clone(),
            source,
        })?;
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Ok(Self {
            id,
            writer,
            scratch,
            snapshotter,
            store,
            rng,
            stats: Stats::default(),
            kept: Vec::new(),
            gate: Arc::default(),
        })
    }

    /// This client's identity.
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    /// The data directory the writer changes and snapshots are taken of.
    pub fn data_dir(&self) -> &Path {
        self.writer.data_dir()
    }

    /// Statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Directories kept for inspection after a failed comparison.
    pub fn kept_dirs(&self) -> &[PathBuf] {
        &self.kept
    }

    /// Shares the fault gate of the other clients of a harness.
    pub(crate) fn set_gate(&mut self, gate: Arc<RwLock<()>>) {
        self.gate = gate;
    }

    /// Runs `kind` once and records its statistics (the time spent waiting at the fault
    /// gate not included).
    pub async fn exec(&mut self, kind: ActionKind) -> Result<Outcome<()>, ActionError> {
        // Held until the action ends: alone for a fault, shared for everything else.
        let gate = self.gate.clone();
        let (_alone, _shared);
        if kind == ActionKind::RestartServer {
            _alone = gate.write_owned().await;
        } else {
            _shared = gate.read_owned().await;
        }
        let start = Instant::now();
        let result = self.run(kind).await;
        let how = match &result {
            Ok(Outcome::Done(())) => RunResult::Done,
            Ok(Outcome::NoOp(_)) => RunResult::NoOp,
            Err(_) => RunResult::Error,
        };
        self.stats.record(kind, start.elapsed(), how);
        result
    }

    /// Runs `kind` `repeat` times, stopping at the first error; `Done` if any run was.
    pub async fn exec_repeat(
        &mut self,
        kind: ActionKind,
        repeat: u32,
    ) -> Result<Outcome<()>, ActionError> {
        let mut last = Outcome::noop("repeat count was 0");
        let mut any_done = false;
        for _ in 0..repeat {
            last = self.exec(kind).await?;
            any_done |= !last.is_noop();
        }
        Ok(if any_done { Outcome::Done(()) } else { last })
    }

    /// Restarts this client: revokes it on the server, then authorizes and connects it
    /// again (a fault: its snapshots must stay reachable). Waits at the fault gate like an
    /// action, so it never overlaps a server restart.
    pub async fn restart(&mut self) -> Result<(), ActionError> {
        let _shared = self.gate.clone().read_owned().await;
        self.snapshotter.remove_client(&self.id).await?;
        self.snapshotter.authorize_client(&self.id).await?;
        self.snapshotter.connect(&self.id).await?;
        Ok(())
    }

    /// Picks an action by weight and runs it.
    pub async fn random_action(
        &mut self,
        weights: &Weights,
    ) -> Result<(ActionKind, Outcome<()>), ActionError> {
        let kind = weights
            .choose(&mut self.rng)
            .ok_or(ActionError::NoActionPicked)?;
        Ok((kind, self.exec(kind).await?))
    }

    /// Runs random actions until `duration` has passed (checked between actions); no-ops
    /// are tolerated, the first error ends the run. Returns the number of actions run.
    ///
    /// As in kopia, running out of space is recovered from rather than fatal: after a
    /// [`WriterError::NoSpace`] the client empties its data directory and restores a live
    /// snapshot into it (counted as `restore-into-data-dir`), then goes on.
    pub async fn run_randomized(
        &mut self,
        weights: &Weights,
        duration: Duration,
    ) -> Result<u64, ActionError> {
        let deadline = Instant::now() + duration;
        let mut n = 0;
        while Instant::now() < deadline {
            match self.random_action(weights).await {
                Ok(_) => {}
                Err(ActionError::Writer(WriterError::NoSpace { .. })) => {
                    self.exec(ActionKind::RestoreIntoDataDir).await?;
                }
                Err(e) => return Err(e),
            }
            n += 1;
        }
        Ok(n)
    }

    async fn run(&mut self, kind: ActionKind) -> Result<Outcome<()>, ActionError> {
        let writer = self.writer.clone();
        match kind {
            ActionKind::Snapshot => self.snapshot().await.map(unit),
            ActionKind::RestoreCompare => self.restore_compare(None).await,
            ActionKind::DeleteSnapshot => self.delete_snapshot().await,
            ActionKind::WriteFiles => self
                .blocking(move |r| writer.write_random_files(r))
                .await
                .map(unit),
            ActionKind::DeleteSubdirectory => self
                .blocking(move |r| writer.delete_random_subdirectory(r))
                .await
                .map(unit),
            ActionKind::DeleteFiles => self
                .blocking(move |r| writer.delete_files(r))
                .await
                .map(unit),
            ActionKind::RestoreIntoDataDir => self.restore_into_data_dir().await,
            ActionKind::Gc => Ok(self.snapshotter.gc().await?),
            ActionKind::RestartServer => Ok(self.snapshotter.restart_server().await?),
        }
    }

    /// Runs a writer operation on a blocking thread with an RNG forked from this client's.
    async fn blocking<T: Send + 'static>(
        &mut self,
        op: impl FnOnce(&mut Xoshiro256PlusPlus) -> Result<T, WriterError> + Send + 'static,
    ) -> Result<T, ActionError> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.rng.next_u64());
        let result = tokio::task::spawn_blocking(move || op(&mut rng)).await;
        Ok(result.map_err(|e| ActionError::Join(e.to_string()))??)
    }

    /// Fingerprints the data directory, snapshots it and records the metadata. Not counted
    /// in [`Client::stats`] (run it through [`Client::exec`] for that); returns the id.
    pub async fn snapshot(&mut self) -> Result<Outcome<SnapshotId>, ActionError> {
        let fingerprint = fingerprint_of(self.data_dir().to_path_buf()).await?;
        let start_us = now_us();
        let id = self
            .snapshotter
            .snapshot(&self.id, self.writer.data_dir())
            .await?;
        let end_us = now_us();
        let meta = SnapshotMeta {
            id: id.clone(),
            client: self.id.clone(),
            start_us,
            end_us,
            fingerprint: Some(fingerprint),
            deleted: false,
            deleted_us: None,
        };
        self.store.put(meta).await?;
        Ok(Outcome::Done(id))
    }

    /// Restores `id` (or a random live snapshot of this client) into a fresh directory and
    /// compares it with its fingerprint. The directory is removed when it matches and
    /// kept (see [`Client::kept_dirs`]) when it does not. Not counted in [`Client::stats`]
    /// ([`Client::exec`] is); use it to check one given snapshot.
    pub async fn restore_compare(
        &mut self,
        id: Option<SnapshotId>,
    ) -> Result<Outcome<()>, ActionError> {
        let Some((id, expected)) = self.pick_live(id).await? else {
            return Ok(Outcome::noop("the client has no live snapshot"));
        };
        let dir = tempfile::Builder::new()
            .prefix("restore-")
            .tempdir_in(&self.scratch)
            .map_err(|source| WriterError::Io {
                action: "create",
                path: self.scratch.clone(),
                source,
            })?;
        let report = self.restore_and_compare(&id, &expected, dir.path()).await?;
        if report.is_clean() {
            return Ok(Outcome::Done(()));
        }
        let restored_into = dir.keep();
        self.kept.push(restored_into.clone());
        Err(ActionError::Mismatch {
            id,
            client: self.id.clone(),
            restored_into,
            report,
        })
    }

    /// Restores `id` into `into` and compares it with `expected`; a restore that fails is
    /// [`ActionError::Lost`], naming the files the snapshot held.
    async fn restore_and_compare(
        &self,
        id: &SnapshotId,
        expected: &Fingerprint,
        into: &Path,
    ) -> Result<Report, ActionError> {
        if let Err(source) = self.snapshotter.restore(&self.id, id, into).await {
            let client = self.id.clone();
            return Err(unrestorable(
                "restored",
                id.clone(),
                client,
                expected,
                source,
            ));
        }
        let actual = fingerprint_of(into.to_path_buf()).await?;
        Ok(fingerprint::compare(expected, &actual))
    }

    /// Empties the data directory, restores a random live snapshot into it and compares.
    async fn restore_into_data_dir(&mut self) -> Result<Outcome<()>, ActionError> {
        let Some((id, expected)) = self.pick_live(None).await? else {
            return Ok(Outcome::noop("the client has no live snapshot"));
        };
        let writer = self.writer.clone();
        self.blocking(move |_| writer.delete_everything()).await?;
        let data_dir = self.data_dir().to_path_buf();
        let report = self.restore_and_compare(&id, &expected, &data_dir).await?;
        if report.is_clean() {
            return Ok(Outcome::Done(()));
        }
        let restored_into = self.data_dir().to_path_buf();
        Err(ActionError::Mismatch {
            id,
            client: self.id.clone(),
            restored_into,
            report,
        })
    }

    /// Deletes a random live snapshot of this client, unless it has at most one.
    async fn delete_snapshot(&mut self) -> Result<Outcome<()>, ActionError> {
        let live = self.store.live(Some(&self.id)).await?;
        if live.len() <= 1 {
            return Ok(Outcome::noop("the client has at most one live snapshot"));
        }
        let id = live[self.rng.random_range(0..live.len())].clone();
        if let Err(source) = self.snapshotter.delete(&self.id, &id).await {
            let meta = self.store.get(&id).await?;
            return Err(match meta.and_then(|m| m.fingerprint) {
                Some(fp) => unrestorable("deleted", id, self.id.clone(), &fp, source),
                None => source.into(),
            });
        }
        self.store.mark_deleted(&id, now_us()).await?;
        Ok(Outcome::Done(()))
    }

    /// The given snapshot, or a random live one of this client, with its fingerprint;
    /// `None` when there is nothing to restore.
    async fn pick_live(
        &mut self,
        id: Option<SnapshotId>,
    ) -> Result<Option<(SnapshotId, Fingerprint)>, ActionError> {
        let live = self.store.live(Some(&self.id)).await?;
        let id = match id {
            Some(id) if live.contains(&id) => id,
            Some(_) => return Ok(None),
            None if live.is_empty() => return Ok(None),
            None => live[self.rng.random_range(0..live.len())].clone(),
        };
        let meta = self.store.get(&id).await?;
        match meta.and_then(|m| m.fingerprint) {
            Some(fp) => Ok(Some((id, fp))),
            None => Err(ActionError::MissingFingerprint(id)),
        }
    }
}

/// Names the files a snapshot that cannot be restored held.
fn unrestorable(
    op: &'static str,
    id: SnapshotId,
    client: ClientId,
    expected: &Fingerprint,
    source: SnapshotError,
) -> ActionError {
    const SHOWN: usize = 5;
    let files: Vec<&str> = expected
        .entries
        .iter()
        .filter(|e| e.kind == crate::fingerprint::EntryKind::File)
        .map(|e| e.path.as_str())
        .collect();
    let mut sample = files
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        sample.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    if files.is_empty() {
        sample = "it held no files".into();
    }
    ActionError::Lost {
        id,
        client,
        op,
        files: files.len(),
        sample,
        source: Box::new(source),
    }
}

fn unit<T>(outcome: Outcome<T>) -> Outcome<()> {
    outcome.map(drop)
}

async fn fingerprint_of(dir: PathBuf) -> Result<Fingerprint, ActionError> {
    let result = tokio::task::spawn_blocking(move || Fingerprint::of(&dir)).await;
    Ok(result.map_err(|e| ActionError::Join(e.to_string()))??)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
