//! The checker's snapshot metadata kept in the job's event store: every snapshot taken or
//! deleted is a `RobustnessSnapshot` event (written, and durable, before the action
//! returns), and a later run of the step (or the job resumed in another process) folds
//! those events back, so it can restore and check snapshots taken earlier.

use crate::{ClientId, MemoryStore, MetadataStore, SnapshotId, SnapshotMeta, StoreError};
use stampede_api::job::events;
use stampede_api::robustness::SnapshotRecord;

use stampede_job::Emitter;

/// A [`MetadataStore`] that answers from memory and writes every change as an event.
pub(crate) struct EventMetaStore {
    memory: MemoryStore,
    emitter: Emitter,
}

impl EventMetaStore {
    /// A store over the step's emitter holding, with `earlier`, what earlier runs of the
    /// step recorded. Returns it and how many live snapshots those runs left.
    pub(crate) async fn load(
        emitter: Emitter,
        earlier: bool,
    ) -> Result<(EventMetaStore, usize), String> {
        let memory = MemoryStore::new();
        let payloads = if earlier {
            emitter
                .earlier(events::ROBUSTNESS_SNAPSHOT)
                .await
                .map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        for payload in payloads {
            let record: SnapshotRecord = serde_json::from_str(&payload).map_err(|e| {
                format!(
                    "a stored {} event is not a snapshot record: {e}",
                    events::ROBUSTNESS_SNAPSHOT
                )
            })?;
            let meta = from_record(record)
                .map_err(|e| format!("a stored snapshot fingerprint cannot be read: {e}"))?;
            memory.put(meta).await.map_err(|e| e.to_string())?;
        }
        let live = memory.live(None).await.map_err(|e| e.to_string())?.len();
        Ok((EventMetaStore { memory, emitter }, live))
    }

    async fn record(&self, meta: &SnapshotMeta) -> Result<(), StoreError> {
        let payload = serde_json::to_value(to_record(meta))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.emitter
            .emit(events::ROBUSTNESS_SNAPSHOT, Some(payload))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

impl MetadataStore for EventMetaStore {
    async fn put(&self, meta: SnapshotMeta) -> Result<(), StoreError> {
        self.record(&meta).await?;
        self.memory.put(meta).await
    }

    async fn get(&self, id: &SnapshotId) -> Result<Option<SnapshotMeta>, StoreError> {
        self.memory.get(id).await
    }

    async fn mark_deleted(&self, id: &SnapshotId, at_us: u64) -> Result<bool, StoreError> {
        if !self.memory.mark_deleted(id, at_us).await? {
            return Ok(false);
        }
        if let Some(meta) = self.memory.get(id).await? {
            self.record(&meta).await?;
        }
        Ok(true)
    }

    async fn live(&self, client: Option<&ClientId>) -> Result<Vec<SnapshotId>, StoreError> {
        self.memory.live(client).await
    }
}

fn to_record(meta: &SnapshotMeta) -> SnapshotRecord {
    SnapshotRecord {
        id: meta.id.0.clone(),
        client: meta.client.0.clone(),
        start_us: meta.start_us,
        end_us: meta.end_us,
        fingerprint: meta
            .fingerprint
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok()),
        deleted_us: meta.deleted_us.or(meta.deleted.then_some(0)),
    }
}

fn from_record(record: SnapshotRecord) -> Result<SnapshotMeta, serde_json::Error> {
    let fingerprint = record.fingerprint.map(serde_json::from_value).transpose()?;
    Ok(SnapshotMeta {
        id: SnapshotId(record.id),
        client: ClientId(record.client),
        start_us: record.start_us,
        end_us: record.end_us,
        fingerprint,
        deleted: record.deleted_us.is_some(),
        deleted_us: record.deleted_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fingerprint;

    #[test]
    fn a_record_keeps_everything_the_checker_needs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), b"data").unwrap();
        let meta = SnapshotMeta {
            id: SnapshotId("s1".into()),
            client: ClientId("client-0-ab".into()),
            start_us: 10,
            end_us: 20,
            fingerprint: Some(Fingerprint::of(dir.path()).unwrap()),
            deleted: false,
            deleted_us: None,
        };
        let record = to_record(&meta);
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains(r#""path":"d/f""#), "{text}");
        assert!(!text.contains("deleted_us"), "{text}");
        let back: SnapshotRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(from_record(back).unwrap(), meta);

        let deleted = SnapshotMeta {
            fingerprint: None,
            deleted: true,
            deleted_us: Some(30),
            ..meta
        };
        let back = from_record(to_record(&deleted)).unwrap();
        assert_eq!(back, deleted);
        assert!(to_record(&deleted).fingerprint.is_none());
    }
}
