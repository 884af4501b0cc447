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

use crate::support::{Sut, harness, small_tree};

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
            let Err(ActionError::Lost { source, sample, .. }) = &lost else {
                panic!("expected the lost snapshot to be missing, got {lost:?}");
            };
            let SnapshotError::Http {
                status: 404, body, ..
            } = &**source
            else {
                panic!("expected a 404, got {source:?}");
            };
            assert!(body.contains(&last.0), "{body}");
            assert!(
                sample.contains("file_"),
                "the lost files are named: {sample}"
            );
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

/// Not a test by itself: with `STAMPEDE_TEST_SUT_DIR` set, this test binary serves a
/// snapshot store there until it is killed, so tests can SIGKILL a real sut process.
#[test]
fn sut_child_process() {
    let Ok(dir) = std::env::var("STAMPEDE_TEST_SUT_DIR") else {
        return;
    };
    let addr = std::env::var("STAMPEDE_TEST_SUT_ADDR")
        .unwrap()
        .parse()
        .unwrap();
    let snap = stampede_sut::SnapConfig {
        bugs: SnapBugs {
            lose_last_write: std::env::var("STAMPEDE_TEST_SUT_LOSE").is_ok(),
            ..SnapBugs::default()
        },
        ..stampede_sut::SnapConfig::new(dir)
    };
    let config = stampede_sut::Config {
        addr,
        threads: 1,
        ..stampede_sut::Config::default()
    };
    let _server = stampede_sut::Server::start_with_store(config, snap).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The store in a child process (this test binary running `sut_child_process`).
struct ChildSut {
    child: std::sync::Mutex<Option<std::process::Child>>,
    dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
    lose_last_write: bool,
}

impl ChildSut {
    fn start(dir: &std::path::Path, lose_last_write: bool) -> Arc<ChildSut> {
        // A free port, kept across restarts.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let sut = Arc::new(ChildSut {
            child: std::sync::Mutex::new(None),
            dir: dir.to_path_buf(),
            addr,
            lose_last_write,
        });
        sut.restart().unwrap();
        sut
    }

    /// SIGKILLs the running child, if any, and starts another on the same port and data.
    fn restart(&self) -> Result<(), String> {
        let mut slot = self.child.lock().unwrap();
        if let Some(mut old) = slot.take() {
            old.kill().map_err(|e| e.to_string())?; // SIGKILL on Unix
            old.wait().map_err(|e| e.to_string())?;
        }
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["http::sut_child_process", "--exact", "--nocapture"])
            .env("STAMPEDE_TEST_SUT_DIR", &self.dir)
            .env("STAMPEDE_TEST_SUT_ADDR", self.addr.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if self.lose_last_write {
            cmd.env("STAMPEDE_TEST_SUT_LOSE", "1");
        }
        *slot = Some(cmd.spawn().map_err(|e| e.to_string())?);
        Ok(())
    }

    fn snapshotter(self: &Arc<Self>) -> stampede_robust::HttpSnapshotter {
        let sut = self.clone();
        let url = format!("http://{}", self.addr);
        stampede_robust::HttpSnapshotter::new(stampede_robust::HttpConfig::new(url))
            .unwrap()
            .with_restart(Arc::new(move || sut.restart()))
    }
}

impl Drop for ChildSut {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two snapshots per client, a SIGKILL of the sut process and a restart, then both
/// restored; returns each client's result for its last snapshot.
async fn kill_between_snapshots(lose_last_write: bool, clients: usize) -> Vec<Result<(), String>> {
    let tmp = tempfile::tempdir().unwrap();
    let sut = ChildSut::start(&tmp.path().join("store"), lose_last_write);
    let harness = harness(tmp.path(), sut.snapshotter(), 17);
    let barrier = Barrier::new(clients);
    let lasts = std::sync::Mutex::new(Vec::new());
    let report = harness
        .run_n(clients, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            let first = c.snapshot().await?.done().unwrap();
            c.exec(ActionKind::WriteFiles).await?;
            let last = c.snapshot().await?.done().unwrap();
            if barrier.wait().await.is_leader() {
                c.exec(ActionKind::RestartServer).await?.done().unwrap();
            }
            barrier.wait().await;
            c.restore_compare(Some(first)).await?.done().unwrap();
            let restored = c.restore_compare(Some(last)).await;
            lasts
                .lock()
                .unwrap()
                .push(restored.map(drop).map_err(|e| e.to_string()));
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    drop(harness);
    lasts.into_inner().unwrap()
}

#[tokio::test]
async fn a_sut_process_killed_with_sigkill_keeps_every_acknowledged_snapshot() {
    let lasts = kill_between_snapshots(false, 4).await;
    assert_eq!(lasts, vec![Ok(()); 4]);
}

#[tokio::test]
async fn a_sut_process_killed_with_sigkill_loses_the_last_write_with_the_bug_on() {
    // One snapshot, the newest of all clients, was only in memory when the process died.
    let lasts = kill_between_snapshots(true, 4).await;
    let lost: Vec<_> = lasts.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(lost.len(), 1, "{lasts:?}");
    assert!(
        lost[0].contains("answered 404") && lost[0].contains("has no snapshot"),
        "{}",
        lost[0]
    );
}

/// Four clients, two snapshots each, one client restarted between them; then the server
/// is restarted and every live snapshot verified by `verify_live`, as a later run would.
async fn verify_after_restart(bugs: SnapBugs) -> stampede_robust::VerifyReport {
    let tmp = tempfile::tempdir().unwrap();
    let sut = Sut::start(&tmp.path().join("store"), bugs);
    let harness = harness(tmp.path(), sut.snapshotter(), 21);
    let report = harness
        .run_n(4, async |c| {
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            // A client restart revokes its token and issues another: it goes on.
            c.restart().await?;
            c.exec(ActionKind::WriteFiles).await?;
            c.exec(ActionKind::Snapshot).await?;
            Ok(())
        })
        .await;
    assert!(report.is_success(), "{report}");
    harness.restart_server().await.unwrap().done().unwrap();
    harness.verify_live().await.unwrap()
}

#[tokio::test]
async fn verify_live_restores_every_snapshot_as_the_client_that_took_it() {
    let found = verify_after_restart(SnapBugs::default()).await;
    assert_eq!(found.verified, 8);
    assert!(found.failures.is_empty(), "{:?}", found.failures);
}

#[tokio::test]
async fn verify_live_names_the_files_of_a_snapshot_lost_in_a_crash() {
    let bugs = SnapBugs {
        lose_last_write: true,
        ..SnapBugs::default()
    };
    let found = verify_after_restart(bugs).await;
    assert_eq!(found.verified, 7);
    let [
        ActionError::Lost {
            op, files, sample, ..
        },
    ] = found.failures.as_slice()
    else {
        panic!("expected one lost snapshot, got {:?}", found.failures);
    };
    assert_eq!(*op, "restored");
    assert!(*files > 0 && sample.contains("file_"), "{files} {sample}");
}
