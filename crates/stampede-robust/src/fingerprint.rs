//! The correctness oracle: a [`Fingerprint`] records every entry of a directory tree
//! (relative path, kind, mode, owner, size, SHA-256 of the content) so that a restored copy
//! can be [`compare`]d with what was snapshotted, as kopia's checker does with fswalker.
//!
//! The comparison ignores what a faithful restore may legitimately change: times, directory
//! sizes, the name of the root directory (restores go to a fresh directory) and owner ids
//! that were 0 (a restore by a non-root user cannot keep them). Everything else — a file
//! added, deleted, resized or rewritten, a mode or kind change — is a [`Difference`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Files are hashed in chunks of this size, so memory use does not grow with file size.
const HASH_BUFFER: usize = 64 * 1024;

/// Below this many files, hashing on one thread beats starting others.
const PARALLEL_MIN_FILES: usize = 64;

/// Why a directory could not be fingerprinted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Listing the tree or reading an entry's metadata failed.
    #[error("cannot walk {path}: {source}")]
    Walk {
        /// The entry that could not be read.
        path: PathBuf,
        /// What the walk reported.
        source: io::Error,
    },
    /// Reading a file's content failed.
    #[error("cannot read {path} to hash it: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A path below the root is not valid UTF-8, so it cannot be recorded portably.
    #[error("path {0:?} is not UTF-8; fingerprints record paths as text")]
    NonUtf8Path(PathBuf),
}

/// What kind of file system object an [`Entry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file; its content is hashed.
    File,
    /// A directory; its size is not compared.
    Dir,
    /// A symbolic link; its target is recorded, never followed.
    Symlink,
    /// Anything else (fifo, socket, device): recorded by kind and mode only.
    Other,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Other => "special file",
        })
    }
}

/// One file system object below the fingerprinted root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the root, components joined by `/`.
    pub path: String,
    /// File, directory, symlink or other.
    pub kind: EntryKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes (recorded for directories too, but never compared for them).
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (recorded, never compared).
    pub mtime_ns: i128,
    /// Lower-case hex SHA-256 of a regular file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, as stored in the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// A deterministic record of a directory tree: entries sorted by path, the root itself
/// excluded (its name and mode belong to whoever created the directory, not to the data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Every entry below the root, sorted by `path`.
    pub entries: Vec<Entry>,
}

impl Fingerprint {
    /// Walks `root` and hashes every regular file, on up to
    /// [`std::thread::available_parallelism`] threads.
    pub fn of(root: &Path) -> Result<Self, FingerprintError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(root, threads)
    }

    /// Like [`Fingerprint::of`] with an explicit number of hashing threads (1 = hash on the
    /// calling thread).
    pub fn with_threads(root: &Path, threads: usize) -> Result<Self, FingerprintError> {
        let mut entries = Vec::new();
        let mut to_hash = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name();
        for item in walk {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(root).to_path_buf();
                FingerprintError::Walk {
                    path,
                    source: e.into(),
                }
            })?;
            let meta = item.metadata().map_err(|e| FingerprintError::Walk {
                path: item.path().to_path_buf(),
                source: e.into(),
            })?;
            let entry = entry_of(root, item.path(), &meta)?;
            if entry.kind == EntryKind::File {
                to_hash.push(entries.len());
            }
            entries.push(entry);
        }
        hash_files(root, &mut entries, &to_hash, threads)?;
        // walkdir sorts siblings, but "a/b" vs "a.txt" must sort as strings to be
        // independent of the walk order.
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self { entries })
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count()
    }

    /// Total size of the regular files, in bytes.
    pub fn total_file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum()
    }
}

fn entry_of(root: &Path, path: &Path, meta: &Metadata) -> Result<Entry, FingerprintError> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut parts = Vec::new();
    for c in rel.components() {
        let s = c
            .as_os_str()
            .to_str()
            .ok_or_else(|| FingerprintError::NonUtf8Path(path.into()))?;
        parts.push(s);
    }
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    let link_target = if kind == EntryKind::Symlink {
        let target = fs::read_link(path).map_err(|source| FingerprintError::Walk {
            path: path.into(),
            source,
        })?;
        Some(
            target
                .to_str()
                .ok_or_else(|| FingerprintError::NonUtf8Path(target.clone()))?
                .into(),
        )
    } else {
        None
    };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Ok(Entry {
        path: parts.join("/"),
        kind,
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.len(),
        mtime_ns,
        sha256: None,
        link_target,
    })
}

/// Fills in `sha256` for the entries at `indices`, splitting the files into contiguous
/// chunks over `threads` scoped threads when there are enough of them to be worth it.
fn hash_files(
    root: &Path,
    entries: &mut [Entry],
    indices: &[usize],
    threads: usize,
) -> Result<(), FingerprintError> {
    let paths: Vec<PathBuf> = indices
        .iter()
        .map(|&i| root.join(&entries[i].path))
        .collect();
    let threads = threads.clamp(1, 16);
    let hashes: Vec<String> = if threads == 1 || paths.len() < PARALLEL_MIN_FILES {
        paths
            .iter()
            .map(|p| hash_file(p))
            .collect::<Result<_, _>>()?
    } else {
        let chunk = paths.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = paths
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|p| hash_file(p))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(paths.len());
            for h in handles {
                // A hashing thread only panics if the allocator does; pass that on.
                all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
            }
            Ok::<_, FingerprintError>(all)
        })?
    };
    for (&i, h) in indices.iter().zip(hashes) {
        entries[i].sha256 = Some(h);
    }
    Ok(())
}

/// Streams a file through SHA-256 and returns the lower-case hex digest.
pub(crate) fn hash_file(path: &Path) -> Result<String, FingerprintError> {
    let err = |source| FingerprintError::Read {
        path: path.into(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One attribute of an entry that differs between the expected and the actual tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "attribute")]
pub enum Change {
    /// The entry changed kind (e.g. a file became a directory).
    Kind {
        /// Kind in the expected tree.
        from: EntryKind,
        /// Kind in the actual tree.
        to: EntryKind,
    },
    /// A regular file's size changed.
    Size {
        /// Expected size.
        from: u64,
        /// Actual size.
        to: u64,
    },
    /// A regular file's content hash changed.
    Content,
    /// Permission bits changed.
    Mode {
        /// Expected bits.
        from: u32,
        /// Actual bits.
        to: u32,
    },
    /// The owner changed (only reported when the expected id was not 0).
    Owner {
        /// Expected `uid:gid`.
        from: String,
        /// Actual `uid:gid`.
        to: String,
    },
    /// A symlink points somewhere else.
    LinkTarget {
        /// Expected target.
        from: String,
        /// Actual target.
        to: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Kind { from, to } => write!(f, "{from} -> {to}"),
            Change::Size { from, to } => write!(f, "size {from} -> {to}"),
            Change::Content => f.write_str("content differs"),
            Change::Mode { from, to } => write!(f, "mode {from:o} -> {to:o}"),
            Change::Owner { from, to } => write!(f, "owner {from} -> {to}"),
            Change::LinkTarget { from, to } => write!(f, "link target {from:?} -> {to:?}"),
        }
    }
}

/// One path that differs between the expected and the actual tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "difference")]
pub enum Difference {
    /// The path exists only in the actual tree.
    Added {
        /// Relative path.
        path: String,
        /// What was found there.
        kind: EntryKind,
    },
    /// The path exists only in the expected tree.
    Deleted {
        /// Relative path.
        path: String,
        /// What should have been there.
        kind: EntryKind,
    },
    /// The path exists in both trees with different attributes.
    Modified {
        /// Relative path.
        path: String,
        /// Every attribute that differs, in a fixed order.
        changes: Vec<Change>,
    },
}

impl Difference {
    /// The relative path this difference is about.
    pub fn path(&self) -> &str {
        match self {
            Difference::Added { path, .. }
            | Difference::Deleted { path, .. }
            | Difference::Modified { path, .. } => path,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Added { path, kind } => write!(f, "added: {path} ({kind})"),
            Difference::Deleted { path, kind } => write!(f, "deleted: {path} ({kind})"),
            Difference::Modified { path, changes } => {
                let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
                write!(f, "modified: {path} ({})", list.join(", "))
            }
        }
    }
}

/// The result of [`compare`]: every difference, sorted by path. Empty means the trees match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Differences sorted by path.
    pub differences: Vec<Difference>,
}

impl Report {
    /// True when the actual tree matches the expected one.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// Counts of (modified, added, deleted) paths.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for d in &self.differences {
            match d {
                Difference::Modified { .. } => c.0 += 1,
                Difference::Added { .. } => c.1 += 1,
                Difference::Deleted { .. } => c.2 += 1,
            }
        }
        c
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("no differences");
        }
        let (m, a, d) = self.counts();
        write!(f, "{m} modified, {a} added, {d} deleted")?;
        for diff in &self.differences {
            write!(f, "\n  {diff}")?;
        }
        Ok(())
    }
}

/// Compares a restored tree (`actual`) with the fingerprint taken before the snapshot
/// (`expected`), ignoring times, directory sizes, the root's name and ids that were 0.
pub fn compare(expected: &Fingerprint, actual: &Fingerprint) -> Report {
    let want: BTreeMap<&str, &Entry> = expected.entries.iter().map(|e| (&*e.path, e)).collect();
    let got: BTreeMap<&str, &Entry> = actual.entries.iter().map(|e| (&*e.path, e)).collect();
    let mut differences = Vec::new();
    for (path, w) in &want {
        match got.get(path) {
            None => differences.push(Difference::Deleted {
                path: (*path).into(),
                kind: w.kind,
            }),
            Some(g) => {
                let changes = changes(w, g);
                if !changes.is_empty() {
                    differences.push(Difference::Modified {
                        path: (*path).into(),
                        changes,
                    });
                }
            }
        }
    }
    for (path, g) in &got {
        if !want.contains_key(path) {
            differences.push(Difference::Added {
                path: (*path).into(),
                kind: g.kind,
            });
        }
    }
    differences.sort_by(|a, b| a.path().cmp(b.path()));
    Report { differences }
}

fn changes(want: &Entry, got: &Entry) -> Vec<Change> {
    if want.kind != got.kind {
        return vec![Change::Kind {
            from: want.kind,
            to: got.kind,
        }];
    }
    let mut out = Vec::new();
    if want.kind == EntryKind::File {
        if want.size != got.size {
            out.push(Change::Size {
                from: want.size,
                to: got.size,
            });
        }
        if want.sha256 != got.sha256 {
            out.push(Change::Content);
        }
    }
    if want.mode != got.mode {
        out.push(Change::Mode {
            from: want.mode,
            to: got.mode,
        });
    }
    let uid_differs = want.uid != 0 && want.uid != got.uid;
    let gid_differs = want.gid != 0 && want.gid != got.gid;
    if uid_differs || gid_differs {
        out.push(Change::Owner {
            from: format!("{}:{}", want.uid, want.gid),
            to: format!("{}:{}", got.uid, got.gid),
        });
    }
    if want.link_target != got.link_target {
        out.push(Change::LinkTarget {
            from: want.link_target.clone().unwrap_or_default(),
            to: got.link_target.clone().unwrap_or_default(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, hash: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            size,
            mtime_ns: 1,
            sha256: Some(hash.into()),
            link_target: None,
        }
    }

    fn dir(path: &str, size: u64) -> Entry {
        Entry {
            kind: EntryKind::Dir,
            sha256: None,
            mode: 0o755,
            ..file(path, size, "")
        }
    }

    fn fp(entries: Vec<Entry>) -> Fingerprint {
        Fingerprint { entries }
    }

    #[test]
    fn identical_fingerprints_compare_clean() {
        let a = fp(vec![dir("a", 4096), file("a/b.txt", 10, "x")]);
        let report = compare(&a, &a.clone());
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.to_string(), "no differences");
    }

    #[test]
    fn modified_file_names_size_and_content() {
        let a = fp(vec![dir("a", 4096), file("a/b.txt", 10, "x")]);
        let b = fp(vec![dir("a", 4096), file("a/b.txt", 9, "y")]);
        let report = compare(&a, &b);
        assert_eq!(
            report.to_string(),
            "1 modified, 0 added, 0 deleted\n  modified: a/b.txt (size 10 -> 9, content differs)"
        );
    }

    #[test]
    fn added_and_deleted_are_named_and_sorted() {
        let a = fp(vec![file("a", 1, "x"), file("c", 1, "x")]);
        let b = fp(vec![file("b", 1, "x"), file("c", 1, "x")]);
        let lines: Vec<String> = compare(&a, &b)
            .differences
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(lines, ["deleted: a (file)", "added: b (file)"]);
    }

    #[test]
    fn times_dir_sizes_and_zero_ids_are_ignored() {
        let mut before = vec![dir("d", 4096), file("d/f", 3, "x")];
        before[1].uid = 0;
        before[1].gid = 0;
        let mut after = before.clone();
        after[0].size = 60;
        after[0].mtime_ns = 99;
        after[1].mtime_ns = 99;
        after[1].uid = 1234;
        after[1].gid = 1234;
        assert!(compare(&fp(before), &fp(after)).is_clean());
    }

    #[test]
    fn non_zero_owner_mode_kind_and_link_changes_are_reported() {
        let mut link = file("l", 0, "");
        link.kind = EntryKind::Symlink;
        link.sha256 = None;
        link.link_target = Some("a".into());
        let before = vec![file("f", 1, "x"), file("k", 1, "x"), link.clone()];
        let mut after = before.clone();
        after[0].uid = 7;
        after[0].mode = 0o600;
        after[1] = dir("k", 4096);
        after[2].link_target = Some("b".into());
        let lines: Vec<String> = compare(&fp(before), &fp(after))
            .differences
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "modified: f (mode 644 -> 600, owner 1000:1000 -> 7:1000)",
                "modified: k (file -> directory)",
                "modified: l (link target \"a\" -> \"b\")",
            ]
        );
    }

    #[test]
    fn fingerprint_round_trips_through_json() {
        let a = fp(vec![dir("a", 4096), file("a/b.txt", 10, "x")]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), a);
        let report = compare(&a, &fp(vec![]));
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
