//! The command snapshotter driving real `tar` for concurrent clients, and a deliberately
//! broken snapshot command that the checker must catch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_robust::{
    ActionError, ActionKind, ClientId, CommandConfig, CommandSnapshotter, Harness, MemoryStore,
    MetadataStore, SnapshotError, SnapshotId, SnapshotMeta, Snapshotter, StoreError, WriterOptions,
};

use crate::support::{small_tree, tar_snapshotter};

#[tokio::test]
async fn tar_round_trip_for_four_concurrent_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let base = tmp.path().join("clients");
    let store = Arc::new(MemoryStore::new());
    let snapshotter = Arc::new(tar_snapshotter(&repo, ""));
    let harness =
        Harness::new(&base, snapshotter, store.clone(), 11).with_writer_options(small_tree());
    let report = harness
        .run_n(4, async |c| {
            assert!(
                c.exec(ActionKind::RestoreIntoDataDir).await?.is_noop(),
                "nothing to restore yet"
            );
            c.exec_repeat(ActionKind::WriteFiles, 3).await?;
            let first = c.snapshot().await?.done().unwrap();
            c.exec(ActionKind::DeleteFiles).await?;
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            c.restore_compare(Some(first.clone()))
                .await?
                .done()
                .unwrap();
            c.exec(ActionKind::RestoreCompare).await?.done().unwrap();
            c.exec(ActionKind::RestoreIntoDataDir)
                .await?
                .done()
                .unwrap();
            c.exec(ActionKind::DeleteSnapshot).await?.done().unwrap();
            c.exec(ActionKind::Gc).await?.done().unwrap();
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    let stats = report.stats();
    assert_eq!(
        stats.0[&ActionKind::Snapshot].count,
        4,
        "one counted snapshot per client"
    );
    assert_eq!(stats.0[&ActionKind::RestoreCompare].count, 4);
    assert_eq!(stats.0[&ActionKind::RestoreIntoDataDir].no_ops, 4);
    let ids: std::collections::BTreeSet<_> =
        report.clients.iter().map(|c| c.client.clone()).collect();
    assert_eq!(ids.len(), 4, "unique identities");
    let all = store.all();
    assert_eq!(all.len(), 8);
    assert_eq!(all.iter().filter(|m| m.deleted).count(), 4);
    // Every live snapshot is in the repository and the clients left nothing behind; a
    // snapshot lost behind the framework's back is reported.
    let anyone = ClientId("any".into());
    assert!(
        harness
            .verify_repository(&anyone)
            .await
            .unwrap()
            .is_consistent()
    );
    assert_eq!(
        std::fs::read_dir(&base).unwrap().count(),
        0,
        "client directories removed"
    );
    let lost = all.iter().find(|m| !m.deleted).unwrap().id.clone();
    std::fs::remove_file(repo.join(format!("{lost}.tar"))).unwrap();
    std::fs::write(repo.join("stray.tar"), "").unwrap();
    let check = harness.verify_repository(&anyone).await.unwrap();
    assert_eq!(check.missing_from_repo, [lost]);
    assert_eq!(check.unknown_to_metadata, [SnapshotId("stray".into())]);
}

#[tokio::test]
async fn a_snapshot_that_skips_a_file_is_caught_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let snapshotter = Arc::new(tar_snapshotter(&repo, "--exclude=./file_1"));
    let options = WriterOptions {
        max_depth: 0,
        min_files_per_write: 3,
        ..small_tree()
    };
    let harness = Harness::new(
        tmp.path().join("clients"),
        snapshotter,
        Arc::new(MemoryStore::new()),
        3,
    )
    .with_writer_options(options);
    let report = harness
        .run_n(2, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            c.exec(ActionKind::RestoreCompare).await?;
            Ok(())
        })
        .await;
    assert!(!report.is_success());
    assert_eq!(report.failures().count(), 2);
    for client in &report.clients {
        let Err(ActionError::Mismatch {
            report: diff,
            restored_into,
            ..
        }) = &client.result
        else {
            panic!("expected a mismatch, got {:?}", client.result);
        };
        let lines: Vec<String> = diff.differences.iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["deleted: file_1 (file)"]);
        assert!(restored_into.join("file_0").exists() && !restored_into.join("file_1").exists());
        assert!(
            client.kept_dirs.contains(restored_into),
            "the restore is kept for inspection"
        );
        assert!(client.kept_dirs.iter().all(|d| d.exists()));
        assert_eq!(client.stats.0[&ActionKind::RestoreCompare].errors, 1);
    }
    let text = report.to_string();
    assert!(
        text.contains("deleted: file_1 (file)") && text.contains("kept "),
        "{text}"
    );
}

#[tokio::test]
async fn command_failures_say_what_ran_and_what_it_said() {
    let tmp = tempfile::tempdir().unwrap();
    let client = ClientId("c".into());
    let make = |snapshot: &str, timeout: &str| {
        let mut c = CommandConfig::new("r", snapshot, "true {id} {target}", "true {id}");
        c.timeout = timeout.into();
        CommandSnapshotter::new(c).unwrap()
    };
    let err = make(": {source}; echo oops >&2; exit 3", "10s")
        .snapshot(&client, tmp.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SnapshotError::Failed { stderr, .. } if stderr == "oops"),
        "{err:?}"
    );
    assert!(err.to_string().contains("exit status: 3"), "{err}");

    let err = make("echo {source} >/dev/null", "10s")
        .snapshot(&client, tmp.path())
        .await
        .unwrap_err();
    assert!(matches!(err, SnapshotError::NoId { .. }), "{err:?}");

    let started = Instant::now();
    let marker = tmp.path().join("still-running");
    let slow = format!(": {{source}}; (sleep 1; touch {}); true", marker.display());
    let err = make(&slow, "200ms")
        .snapshot(&client, tmp.path())
        .await
        .unwrap_err();
    assert!(matches!(err, SnapshotError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!marker.exists(), "the whole process group was killed");

    let s = make(": {source}; echo id-1", "10s");
    assert!(matches!(
        s.list(&client).await,
        Err(SnapshotError::Unsupported { op: "list" })
    ));
    assert!(s.gc().await.unwrap().is_noop(), "no gc command is a no-op");
}

#[tokio::test]
async fn hooks_run_with_the_client_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let log_s = log.to_str().unwrap();
    let mut c = CommandConfig::new(
        tmp.path().to_str().unwrap(),
        "echo x {source}",
        "true {id} {target}",
        "true {id}",
    );
    c.authorize_client = Some(format!("echo auth {{client}} >> {log_s}"));
    c.connect = Some(format!("echo connect $STAMPEDE_CLIENT >> {log_s}"));
    c.remove_client = Some(format!("echo remove {{client}} >> {log_s}"));
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(CommandSnapshotter::new(c).unwrap()),
        Arc::new(MemoryStore::new()),
        1,
    );
    let report = harness.run_n(1, async |_| Ok(())).await;
    assert!(report.is_success(), "{report}");
    let id = &report.clients[0].client;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, format!("auth {id}\nconnect {id}\nremove {id}\n"));
}

#[tokio::test]
async fn the_server_command_is_killed_with_sigkill_and_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let mut config = tar_snapshotter(&repo, "").config().clone();
    // A "server" that ignores SIGTERM, so only SIGKILL ends it.
    config.server = Some(
        "trap '' TERM; echo $$ > {repo}/pid.tmp && mv {repo}/pid.tmp {repo}/pid; exec sleep 600"
            .into(),
    );
    config.server_ready = Some("kill -0 \"$(cat {repo}/pid)\"".into());
    let snapshotter = Arc::new(CommandSnapshotter::new(config).unwrap());
    let harness = Harness::new(
        tmp.path().join("clients"),
        snapshotter.clone(),
        Arc::new(MemoryStore::new()),
        4,
    )
    .with_writer_options(small_tree());
    harness.start_server().await.unwrap();
    let first = snapshotter.server_pid().await.expect("server running");
    let report = harness
        .run_n(2, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            let id = c.snapshot().await?.done().unwrap();
            c.exec(ActionKind::RestartServer).await?.done().unwrap();
            c.restore_compare(Some(id)).await?.done().unwrap();
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    let last = snapshotter.server_pid().await.expect("server running");
    assert_ne!(first, last);
    // Gone, or a zombie not yet reaped.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, s)| !s.starts_with('Z'))
        })
    };
    assert!(!alive(first), "the first server was killed and reaped");
    let recorded: u32 = std::fs::read_to_string(repo.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(recorded, last, "server_ready waited for the new server");
    drop(harness);
    drop(snapshotter);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!alive(last), "dropping the snapshotter kills its server");
}

/// A metadata store that lists, besides the snapshots it keeps, one it has no record of.
struct ListsAGhost(MemoryStore);

impl MetadataStore for ListsAGhost {
    async fn put(&self, meta: SnapshotMeta) -> Result<(), StoreError> {
        self.0.put(meta).await
    }

    async fn get(&self, id: &SnapshotId) -> Result<Option<SnapshotMeta>, StoreError> {
        self.0.get(id).await
    }

    async fn mark_deleted(&self, id: &SnapshotId, at_us: u64) -> Result<bool, StoreError> {
        self.0.mark_deleted(id, at_us).await
    }

    async fn live(&self, client: Option<&ClientId>) -> Result<Vec<SnapshotId>, StoreError> {
        let mut ids = self.0.live(client).await?;
        ids.push(SnapshotId("ghost".into()));
        Ok(ids)
    }
}

/// A live snapshot whose record is missing cannot be checked: `verify_live` says so
/// instead of skipping it (a skipped snapshot would be a loss nobody sees).
#[tokio::test]
async fn verify_live_refuses_a_live_snapshot_without_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let store = Arc::new(ListsAGhost(MemoryStore::new()));
    let snapshotter = Arc::new(tar_snapshotter(&repo, ""));
    let harness = Harness::new(tmp.path().join("clients"), snapshotter, store, 5)
        .with_writer_options(small_tree());
    let report = harness
        .run_n(1, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    let error = harness.verify_live().await.unwrap_err().to_string();
    assert!(
        error.contains("snapshot ghost is listed as live but has no record"),
        "{error}"
    );
}
