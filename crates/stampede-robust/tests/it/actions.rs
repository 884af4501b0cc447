//! Weighted choice, repeat counts, statistics and the randomized mode of one client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stampede_robust::{
    ActionKind, Client, ClientId, CommandSnapshotter, FileWriter, MemoryStore, Outcome, Weights,
};

use crate::support::{rng, small_tree, tar_snapshotter};

#[test]
fn weighted_choice_follows_the_weights() {
    let weights = Weights::from_pairs([
        (ActionKind::Snapshot, 2),
        (ActionKind::WriteFiles, 1),
        (ActionKind::Gc, 1),
        (ActionKind::DeleteFiles, 0),
    ]);
    let mut r = rng(2024);
    let draws = 40_000;
    let mut seen: BTreeMap<ActionKind, u32> = BTreeMap::new();
    for _ in 0..draws {
        *seen.entry(weights.choose(&mut r).unwrap()).or_default() += 1;
    }
    assert_eq!(
        seen.get(&ActionKind::DeleteFiles),
        None,
        "weight 0 is never picked"
    );
    for (kind, share) in [
        (ActionKind::Snapshot, 0.5),
        (ActionKind::WriteFiles, 0.25),
        (ActionKind::Gc, 0.25),
    ] {
        let got = f64::from(seen[&kind]) / f64::from(draws);
        assert!(
            (got - share).abs() < 0.02,
            "{kind}: {got:.3} of draws, want {share}"
        );
    }
    // The same seed makes the same choices.
    let first: Vec<_> = (0..50)
        .map(|_| weights.choose(&mut rng(5)).unwrap())
        .collect();
    let again: Vec<_> = (0..50)
        .map(|_| weights.choose(&mut rng(5)).unwrap())
        .collect();
    assert_eq!(first, again);
}

fn client(tmp: &std::path::Path, seed: u64) -> Client<CommandSnapshotter, MemoryStore> {
    let repo = tmp.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let writer = FileWriter::new(tmp.join("data"), small_tree()).unwrap();
    let snapshotter = Arc::new(tar_snapshotter(&repo, ""));
    let id = ClientId("solo".into());
    Client::new(
        id,
        writer,
        tmp.join("scratch"),
        snapshotter,
        Arc::new(MemoryStore::new()),
        seed,
    )
    .unwrap()
}

#[tokio::test]
async fn repeat_counts_and_noops_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = client(tmp.path(), 1);
    assert!(
        c.exec(ActionKind::RestoreCompare).await.unwrap().is_noop(),
        "no snapshot yet"
    );
    assert!(c.exec(ActionKind::DeleteSnapshot).await.unwrap().is_noop());
    assert_eq!(
        c.exec_repeat(ActionKind::WriteFiles, 3).await.unwrap(),
        Outcome::Done(())
    );
    c.exec_repeat(ActionKind::Snapshot, 2).await.unwrap();
    c.exec(ActionKind::DeleteSnapshot)
        .await
        .unwrap()
        .done()
        .unwrap();
    assert!(
        c.exec(ActionKind::DeleteSnapshot).await.unwrap().is_noop(),
        "keeps the last one"
    );
    c.exec(ActionKind::RestoreCompare)
        .await
        .unwrap()
        .done()
        .unwrap();
    let s = c.stats();
    assert_eq!(s.0[&ActionKind::WriteFiles].count, 3);
    assert_eq!(s.0[&ActionKind::Snapshot].count, 2);
    let del = &s.0[&ActionKind::DeleteSnapshot];
    assert_eq!((del.count, del.no_ops, del.errors), (3, 2, 0));
    assert!(del.min_us <= del.max_us && del.total_us >= del.max_us);
    assert_eq!(s.0[&ActionKind::RestoreCompare].no_ops, 1);
}

#[tokio::test]
async fn randomized_mode_runs_every_action_until_the_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = client(tmp.path(), 9);
    let weights = Weights::from_pairs(ActionKind::ALL.map(|k| (k, 1)));
    let started = std::time::Instant::now();
    let n = c
        .run_randomized(&weights, Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(n, c.stats().total_count());
    assert!(n >= 4, "only {n} actions in 1.5 s");
    assert!(
        c.stats().0.len() >= 3,
        "several kinds of action ran: {:?}",
        c.stats().0.keys()
    );
    println!("{}", c.stats());
    let errors: u64 = c.stats().0.values().map(|s| s.errors).sum();
    assert_eq!(errors, 0);
}

#[tokio::test]
async fn all_zero_weights_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = client(tmp.path(), 1);
    let err = c.random_action(&Weights::from_pairs([])).await.unwrap_err();
    assert!(
        err.to_string().contains("every action weight is 0"),
        "{err}"
    );
}

#[tokio::test]
async fn randomized_mode_recovers_from_no_space() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let full = stampede_robust::WriterOptions {
        free_space_floor_bytes: u64::MAX,
        ..small_tree()
    };
    let writer = FileWriter::new(tmp.path().join("data"), full).unwrap();
    let snapshotter = Arc::new(tar_snapshotter(&repo, ""));
    let store = Arc::new(MemoryStore::new());
    let id = ClientId("full".into());
    let mut c = Client::new(
        id,
        writer,
        tmp.path().join("scratch"),
        snapshotter,
        store,
        1,
    )
    .unwrap();
    std::fs::write(c.data_dir().join("kept"), "x").unwrap();
    c.exec(ActionKind::Snapshot).await.unwrap();
    std::fs::write(c.data_dir().join("later"), "y").unwrap();
    let weights = Weights::from_pairs([(ActionKind::WriteFiles, 1)]);
    let n = c
        .run_randomized(&weights, Duration::from_millis(300))
        .await
        .unwrap();
    let s = c.stats();
    assert_eq!(
        s.0[&ActionKind::WriteFiles].errors,
        n,
        "every write hit the floor"
    );
    assert_eq!(
        s.0[&ActionKind::RestoreIntoDataDir].count,
        n,
        "and was recovered from"
    );
    assert!(c.data_dir().join("kept").exists() && !c.data_dir().join("later").exists());
}
