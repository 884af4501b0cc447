//! Fingerprints of real trees: equal after a copy, every kind of difference found and
//! named, ignored attributes really ignored.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use stampede_robust::{Fingerprint, FingerprintError, compare};

use crate::support::{copy_tree, tree};

#[test]
fn a_copy_has_an_equal_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    tree(&src, 1, 6);
    copy_tree(&src, &dst);
    let a = Fingerprint::of(&src).unwrap();
    assert!(
        a.file_count() >= 6,
        "the tree is not trivial: {} files",
        a.file_count()
    );
    let report = compare(&a, &Fingerprint::of(&dst).unwrap());
    assert!(report.is_clean(), "{report}");
}

#[test]
fn fingerprints_are_deterministic_and_serializable() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path(), 2, 20);
    let one = Fingerprint::with_threads(tmp.path(), 1).unwrap();
    let many = Fingerprint::with_threads(tmp.path(), 4).unwrap();
    assert_eq!(one, many);
    let mut sorted = one
        .entries
        .iter()
        .map(|e| e.path.clone())
        .collect::<Vec<_>>();
    sorted.sort();
    assert_eq!(
        sorted,
        one.entries
            .iter()
            .map(|e| e.path.clone())
            .collect::<Vec<_>>()
    );
    let json = serde_json::to_string(&one).unwrap();
    assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), one);
}

#[test]
fn every_kind_of_difference_is_detected_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    fs::create_dir_all(src.join("a/sub")).unwrap();
    for name in [
        "a/b.txt",
        "a/same-size.txt",
        "a/gone.txt",
        "a/mode.txt",
        "a/kind",
    ] {
        fs::write(src.join(name), "0123456789").unwrap();
    }
    fs::write(src.join("a/sub/x"), "x").unwrap();
    std::os::unix::fs::symlink("b.txt", src.join("a/link")).unwrap();
    copy_tree(&src, &dst);
    let before = Fingerprint::of(&src).unwrap();

    fs::write(dst.join("a/b.txt"), "012345678").unwrap();
    fs::write(dst.join("a/same-size.txt"), "0123456789".replace('5', "X")).unwrap();
    fs::remove_file(dst.join("a/gone.txt")).unwrap();
    fs::write(dst.join("a/new.txt"), "new").unwrap();
    fs::set_permissions(dst.join("a/mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(dst.join("a/kind")).unwrap();
    fs::create_dir(dst.join("a/kind")).unwrap();
    fs::remove_dir_all(dst.join("a/sub")).unwrap();
    fs::remove_file(dst.join("a/link")).unwrap();
    std::os::unix::fs::symlink("new.txt", dst.join("a/link")).unwrap();

    let report = compare(&before, &Fingerprint::of(&dst).unwrap());
    let lines: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
    let mode = fs::metadata(src.join("a/mode.txt"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(
        lines,
        [
            "modified: a/b.txt (size 10 -> 9, content differs)".to_string(),
            "deleted: a/gone.txt (file)".into(),
            "modified: a/kind (file -> directory)".into(),
            "modified: a/link (link target \"b.txt\" -> \"new.txt\")".into(),
            format!("modified: a/mode.txt (mode {mode:o} -> 600)"),
            "added: a/new.txt (file)".into(),
            "modified: a/same-size.txt (content differs)".into(),
            "deleted: a/sub (directory)".into(),
            "deleted: a/sub/x (file)".into(),
        ]
    );
    assert_eq!(report.counts(), (5, 1, 3));
    assert!(
        report
            .to_string()
            .starts_with("5 modified, 1 added, 3 deleted\n  modified: a/b.txt")
    );
}

#[test]
fn times_directory_sizes_and_a_renamed_root_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src, 3, 5);
    let before = Fingerprint::of(&src).unwrap();
    // Many entries make a directory's size grow; removing them leaves it grown.
    for i in 0..400 {
        fs::write(src.join(format!("padding-name-long-enough-{i:04}")), "").unwrap();
    }
    for i in 0..400 {
        fs::remove_file(src.join(format!("padding-name-long-enough-{i:04}"))).unwrap();
    }
    let old = SystemTime::now() - Duration::from_secs(86_400 * 365);
    for entry in &before.entries {
        let f = fs::File::open(src.join(&entry.path)).unwrap();
        f.set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
            .unwrap();
    }
    let renamed = tmp.path().join("restored-somewhere-else");
    fs::rename(&src, &renamed).unwrap();
    let after = Fingerprint::of(&renamed).unwrap();
    assert_ne!(
        before.entries[0].mtime_ns, after.entries[0].mtime_ns,
        "times did change"
    );
    let report = compare(&before, &after);
    assert!(report.is_clean(), "{report}");
}

#[test]
fn owners_that_were_zero_are_ignored_and_others_are_not() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: changing owners needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    fs::write(&path, "x").unwrap();
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    let root_owned = Fingerprint::of(tmp.path()).unwrap();
    std::os::unix::fs::chown(&path, Some(1234), Some(1234)).unwrap();
    let user_owned = Fingerprint::of(tmp.path()).unwrap();
    assert!(compare(&root_owned, &user_owned).is_clean());
    let report = compare(&user_owned, &root_owned);
    assert_eq!(
        report.differences[0].to_string(),
        "modified: f (owner 1234:1234 -> 0:0)"
    );
}

#[test]
fn a_missing_root_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = Fingerprint::of(&missing).unwrap_err();
    assert!(matches!(err, FingerprintError::Walk { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}
