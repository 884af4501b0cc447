//! The `http` snapshotter against the sut's snapshot store in this process: concurrent
//! clients, each bug switch caught by the checker, and kill-and-restart faults.

use std::sync::Arc;
use std::time::Duration;

use stampede_robust::{
    ActionError, ActionKind, Difference, Harness, MemoryStore, MetadataStore, SnapshotError,
    Snapshotter, Weights, WriterOptions,
};
use stampede_sut::SnapBugs;
use tokio::sync::Barrier;

use crate::support::{Sut, small_tree};

#[tokio::test]
async fn http_round_trip_for_four_concurrent_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let sut = Sut::start(&tmp.path().join("store"), SnapBugs::default());
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(sut.snapshotter()),
        Arc::new(MemoryStore::new()),
        21,
    )
    .with_writer_options(small_tree());
    harness.start_server().await.unwrap();
    let report = harness
        .run_n(4, async |c| {
            c.exec_repeat(ActionKind::WriteFiles, 3).await?;
            let first = c.snapshot().await?.done().unwrap();
            c.exec(ActionKind::DeleteFiles).await?;
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            c.restore_compare(Some(first)).await?.done().unwrap();
            c.exec(ActionKind::RestoreCompare).await?.done().unwrap();
            c.exec(ActionKind::RestoreIntoDataDir)
                .await?
                .done()
                .unwrap();
            c.exec(ActionKind::DeleteSnapshot).await?.done().unwrap();
            c.exec(ActionKind::Gc).await?.done().unwrap();
            let mut listed = harness.snapshotter().list(c.id()).await?;
            let mut live = harness.store().live(Some(c.id())).await?;
            listed.sort();
            live.sort();
            assert_eq!(listed, live);
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    let stats = report.stats();
    assert_eq!(stats.0[&ActionKind::RestoreCompare].count, 4);
    assert_eq!(stats.0[&ActionKind::Snapshot].errors, 0);
}

/// One client writes files at the top level, snapshots and restore-compares; returns what
/// the checker said and the name of the first file (the one the store's bugs damage).
async fn damaged_restore(bugs: SnapBugs) -> (Vec<Difference>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let sut = Sut::start(&tmp.path().join("store"), bugs);
    let options = WriterOptions {
        max_depth: 0,
        min_files_per_write: 3,
        min_file_size: 1,
        ..small_tree()
    };
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(sut.snapshotter()),
        Arc::new(MemoryStore::new()),
        5,
    )
    .with_writer_options(options);
    let first = std::sync::Mutex::new(String::new());
    let report = harness
        .run_n(1, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            let mut names: Vec<_> = std::fs::read_dir(c.data_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            *first.lock().unwrap() = names[0].clone();
            c.exec(ActionKind::Snapshot).await?;
            c.exec(ActionKind::RestoreCompare).await?;
            Ok(())
        })
        .await;
    let Err(ActionError::Mismatch { report: diff, .. }) = &report.clients[0].result else {
        panic!("{bugs:?}: expected a mismatch, got {report}");
    };
    assert!(
        report
            .to_string()
            .contains("does not match its fingerprint"),
        "{report}"
    );
    (diff.differences.clone(), first.into_inner().unwrap())
}

#[tokio::test]
async fn each_damaging_bug_switch_is_caught_and_names_the_file() {
    let (diff, file) = damaged_restore(SnapBugs {
        drop_file: true,
        ..SnapBugs::default()
    })
    .await;
    let lines: Vec<String> = diff.iter().map(ToString::to_string).collect();
    assert_eq!(lines, [format!("deleted: {file} (file)")]);

    let (diff, file) = damaged_restore(SnapBugs {
        flip_byte: true,
        ..SnapBugs::default()
    })
    .await;
    let lines: Vec<String> = diff.iter().map(ToString::to_string).collect();
    assert_eq!(lines, [format!("modified: {file} (content differs)")]);
}

#[tokio::test]
async fn acknowledged_snapshots_survive_a_kill_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let sut = Sut::start(&tmp.path().join("store"), SnapBugs::default());
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(sut.snapshotter()),
        Arc::new(MemoryStore::new()),
        8,
    )
    .with_writer_options(small_tree());
    let barrier = Barrier::new(4);
    let report = harness
        .run_n(4, async |c| {
            let mut ids = Vec::new();
            for _ in 0..2 {
                c.exec(ActionKind::WriteFiles).await?;
                ids.push(c.snapshot().await?.done().unwrap());
            }
            if barrier.wait().await.is_leader() {
                c.exec(ActionKind::RestartServer).await?.done().unwrap();
            }
            barrier.wait().await;
            for id in ids {
                c.restore_compare(Some(id)).await?.done().unwrap();
            }
            // Tokens survived too: the client goes on as before.
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            c.exec(ActionKind::RestoreCompare).await?.done().unwrap();
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.stats().0[&ActionKind::RestartServer].count, 1);
}

#[tokio::test]
async fn a_write_lost_in_a_crash_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let bugs = SnapBugs {
        lose_last_write: true,
        ..SnapBugs::default()
    };
    let sut = Sut::start(&tmp.path().join("store"), bugs);
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(sut.snapshotter()),
        Arc::new(MemoryStore::new()),
        9,
    )
    .with_writer_options(small_tree());
    let report = harness
        .run_n(1, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            let first = c.snapshot().await?.done().unwrap();
            c.exec(ActionKind::WriteFiles).await?;
            let last = c.snapshot().await?.done().unwrap();
            // Before the crash the bug is invisible.
            c.restore_compare(Some(last.clone())).await?.done().unwrap();
            harness.restart_server().await?.done().unwrap();
            c.restore_compare(Some(first)).await?.done().unwrap();
            let lost = c.restore_compare(Some(last.clone())).await;
            let Err(ActionError::Snapshot(SnapshotError::Http {
                status: 404, body, ..
            })) = &lost
            else {
                panic!("expected the lost snapshot to be missing, got {lost:?}");
            };
            assert!(body.contains(&last.0), "{body}");
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
}

#[tokio::test]
async fn randomized_clients_with_restarts_between_actions() {
    let tmp = tempfile::tempdir().unwrap();
    let sut = Sut::start(&tmp.path().join("store"), SnapBugs::default());
    let harness = Harness::new(
        tmp.path().join("clients"),
        Arc::new(sut.snapshotter()),
        Arc::new(MemoryStore::new()),
        13,
    )
    .with_writer_options(small_tree());
    let mut weights = Weights::default();
    weights.0.insert(ActionKind::RestartServer, 1);
    let report = harness
        .run_n(4, async |c| {
            c.run_randomized(&weights, Duration::from_millis(1500))
                .await
                .map(drop)
        })
        .await;
    assert!(report.is_success(), "{report}");
}
