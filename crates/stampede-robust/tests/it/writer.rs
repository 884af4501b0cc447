//! The file writer on real directories: reproducible trees, no-ops, the free-space floor.

use std::fs;

use stampede_robust::{FileWriter, Fingerprint, Outcome, WriterError, WriterOptions, compare};

use crate::support::{rng, small_tree, tree};

#[test]
fn the_same_seed_writes_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tree(&tmp.path().join("a"), 7, 10);
    let b = tree(&tmp.path().join("b"), 7, 10);
    let c = tree(&tmp.path().join("c"), 8, 10);
    let fa = Fingerprint::of(a.data_dir()).unwrap();
    assert!(compare(&fa, &Fingerprint::of(b.data_dir()).unwrap()).is_clean());
    assert!(!compare(&fa, &Fingerprint::of(c.data_dir()).unwrap()).is_clean());
    let depth = fa
        .entries
        .iter()
        .map(|e| e.path.matches('/').count())
        .max()
        .unwrap();
    assert!(
        depth <= 3,
        "max_depth 3 means files at most 3 directories down, got {depth}"
    );
}

#[test]
fn nothing_to_do_is_a_noop_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let w = FileWriter::new(tmp.path(), small_tree()).unwrap();
    let mut r = rng(1);
    assert!(w.delete_everything().unwrap().is_noop());
    assert!(w.delete_random_subdirectory(&mut r).unwrap().is_noop());
    assert!(w.delete_files(&mut r).unwrap().is_noop());
    let none = WriterOptions {
        min_files_per_write: 0,
        max_files_per_write: 0,
        ..small_tree()
    };
    let w0 = FileWriter::new(tmp.path(), none).unwrap();
    assert!(w0.write_random_files(&mut r).unwrap().is_noop());
    // A subdirectory with files but no further subdirectories: nothing to delete there.
    fs::write(tmp.path().join("only-a-file"), "x").unwrap();
    assert!(w.delete_random_subdirectory(&mut r).unwrap().is_noop());
    assert!(matches!(w.delete_everything().unwrap(), Outcome::Done(s) if s.entries == 1));
    assert!(w.delete_everything().unwrap().is_noop());
}

#[test]
fn deletes_remove_what_they_report() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tree(tmp.path(), 3, 15);
    let mut r = rng(4);
    let before = Fingerprint::of(tmp.path()).unwrap();
    let Outcome::Done(gone) = w.delete_random_subdirectory(&mut r).unwrap() else {
        panic!("15 writes at depth up to 3 made subdirectories");
    };
    assert!(!tmp.path().join(&gone.dir).exists());
    let report = compare(&before, &Fingerprint::of(tmp.path()).unwrap());
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.to_string() == format!("deleted: {} (directory)", gone.dir))
    );
    let all = WriterOptions {
        delete_contents_percent: 100,
        max_depth: 0,
        ..small_tree()
    };
    let wipe = FileWriter::new(tmp.path(), all).unwrap();
    wipe.delete_files(&mut r).unwrap().done().unwrap();
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn the_free_space_floor_stops_writes_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        free_space_floor_bytes: u64::MAX,
        ..small_tree()
    };
    let w = FileWriter::new(tmp.path(), options).unwrap();
    let err = w.write_random_files(&mut rng(1)).unwrap_err();
    assert!(matches!(err, WriterError::NoSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("free_space_floor_bytes"), "{err}");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn subdirectory_delete_needs_a_depth() {
    let tmp = tempfile::tempdir().unwrap();
    let w = FileWriter::new(
        tmp.path(),
        WriterOptions {
            max_depth: 0,
            ..small_tree()
        },
    )
    .unwrap();
    let err = w.delete_random_subdirectory(&mut rng(1)).unwrap_err();
    assert!(err.to_string().contains("max_depth"), "{err}");
}
