//! What the checker remembers about each snapshot — who took it, when, the fingerprint of
//! the data at that moment, whether it was deleted — behind the [`MetadataStore`] trait.
//! [`MemoryStore`] serves tests and single-process runs; the job's event store will back a
//! persistent implementation, so a restarted run can still check old snapshots.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::snapshotter::{ClientId, SnapshotId};

/// Metadata of one snapshot (kopia's `{snapID, snapStartTime, snapEndTime, deletionTime,
/// validationData}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The snapshotter's id.
    pub id: SnapshotId,
    /// The client that took it.
    pub client: ClientId,
    /// When the snapshot command started, in microseconds since the Unix epoch.
    pub start_us: u64,
    /// When it returned, in microseconds since the Unix epoch.
    pub end_us: u64,
    /// Fingerprint of the source taken just before the snapshot; dropped on delete.
    pub fingerprint: Option<Fingerprint>,
    /// True once the snapshot was deleted.
    pub deleted: bool,
    /// When it was deleted, in microseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_us: Option<u64>,
}

/// Why the metadata store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing store failed.
    #[error("snapshot metadata store: {0}")]
    Backend(String),
}

/// Keeps [`SnapshotMeta`] by snapshot id; shared by all clients of a run.
pub trait MetadataStore: Send + Sync + 'static {
    /// Records a new snapshot (or replaces the record with the same id).
    fn put(&self, meta: SnapshotMeta) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The record of snapshot `id`, if any.
    fn get(
        &self,
        id: &SnapshotId,
    ) -> impl Future<Output = Result<Option<SnapshotMeta>, StoreError>> + Send;

    /// Marks `id` deleted at `at_us` and drops its fingerprint; false if unknown.
    fn mark_deleted(
        &self,
        id: &SnapshotId,
        at_us: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ids of the snapshots not deleted, of `client` only or of everyone, in id order.
    fn live(
        &self,
        client: Option<&ClientId>,
    ) -> impl Future<Output = Result<Vec<SnapshotId>, StoreError>> + Send;
}

/// An in-memory [`MetadataStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    snapshots: Mutex<BTreeMap<SnapshotId, SnapshotMeta>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, deleted ones included, in id order.
    pub fn all(&self) -> Vec<SnapshotMeta> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SnapshotId, SnapshotMeta>> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl MetadataStore for MemoryStore {
    async fn put(&self, meta: SnapshotMeta) -> Result<(), StoreError> {
        self.lock().insert(meta.id.clone(), meta);
        Ok(())
    }

    async fn get(&self, id: &SnapshotId) -> Result<Option<SnapshotMeta>, StoreError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn mark_deleted(&self, id: &SnapshotId, at_us: u64) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(id) {
            Some(meta) => {
                meta.deleted = true;
                meta.deleted_us = Some(at_us);
                meta.fingerprint = None;
                true
            }
            None => false,
        })
    }

    async fn live(&self, client: Option<&ClientId>) -> Result<Vec<SnapshotId>, StoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|m| !m.deleted && client.is_none_or(|c| *c == m.client))
            .map(|m| m.id.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, client: &str) -> SnapshotMeta {
        SnapshotMeta {
            id: SnapshotId(id.into()),
            client: ClientId(client.into()),
            start_us: 1,
            end_us: 2,
            fingerprint: Some(Fingerprint { entries: vec![] }),
            deleted: false,
            deleted_us: None,
        }
    }

    #[tokio::test]
    async fn live_filters_by_client_and_deletion() {
        let store = MemoryStore::new();
        store.put(meta("a", "c1")).await.unwrap();
        store.put(meta("b", "c2")).await.unwrap();
        store.put(meta("c", "c1")).await.unwrap();
        assert!(
            store
                .mark_deleted(&SnapshotId("a".into()), 9)
                .await
                .unwrap()
        );
        assert!(
            !store
                .mark_deleted(&SnapshotId("zz".into()), 9)
                .await
                .unwrap()
        );
        let ids = |v: Vec<SnapshotId>| v.into_iter().map(|i| i.0).collect::<Vec<_>>();
        assert_eq!(ids(store.live(None).await.unwrap()), ["b", "c"]);
        assert_eq!(
            ids(store.live(Some(&ClientId("c1".into()))).await.unwrap()),
            ["c"]
        );
        let a = store.get(&SnapshotId("a".into())).await.unwrap().unwrap();
        assert_eq!(
            (a.deleted, a.deleted_us, a.fingerprint),
            (true, Some(9), None)
        );
    }
}
