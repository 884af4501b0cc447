//! The [`FileWriter`] changes a client's data directory the way kopia's fio writer does:
//! random file trees (depth, branching, count, sizes, a share of duplicate blocks), random
//! subdirectory deletes, deleting a share of one directory's contents, deleting everything.
//!
//! Every choice comes from the RNG the caller passes in, so a seed replays a run. An
//! operation that finds nothing to do returns [`Outcome::NoOp`]; operations on overlapping
//! paths are serialized by a path lock, so writers shared between tasks never interleave.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::pathlock::PathLocks;

/// Files are written, and duplicated, in blocks of this size (fio's default `bs`).
const BLOCK: usize = 4096;

/// How the [`FileWriter`] shapes its trees. Every field has a default, so `{}` is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WriterOptions {
    /// Deepest directory level a write or delete may reach (0 = the data directory only).
    pub max_depth: u32,
    /// Subdirectories per directory a write chooses from (`dir_0` ... `dir_{n-1}`); at
    /// least 1.
    pub branching: u32,
    /// Fewest files one write creates or overwrites.
    pub min_files_per_write: u32,
    /// Most files one write creates or overwrites.
    pub max_files_per_write: u32,
    /// Smallest file, in bytes.
    pub min_file_size: u64,
    /// Largest file, in bytes.
    pub max_file_size: u64,
    /// Lowest share, in percent, of 4 KiB blocks that repeat a block already written by
    /// the same write (so a deduplicating store can share them).
    pub min_dedupe_percent: u8,
    /// Highest such share, in percent (at most 100); each write picks one in the range.
    pub max_dedupe_percent: u8,
    /// Most bytes one write may write; 0 = no limit (files past the limit are cut short
    /// or skipped).
    pub io_limit_bytes: u64,
    /// Free space, in bytes, a write always leaves on the data directory's file system;
    /// a write that could not write a byte without crossing it fails with
    /// [`WriterError::NoSpace`].
    pub free_space_floor_bytes: u64,
    /// Chance, in percent, that [`FileWriter::delete_files`] removes each entry of the
    /// directory it picked (at most 100).
    pub delete_contents_percent: u8,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_depth: 3,
            branching: 3,
            min_files_per_write: 1,
            max_files_per_write: 20,
            min_file_size: 0,
            max_file_size: 64 * 1024,
            min_dedupe_percent: 0,
            max_dedupe_percent: 50,
            io_limit_bytes: 0,
            free_space_floor_bytes: 100 * 1024 * 1024,
            delete_contents_percent: 20,
        }
    }
}

impl WriterOptions {
    /// Checks that every range is ordered and every percentage is at most 100.
    pub fn validate(&self) -> Result<(), WriterError> {
        let bad = |what: &str| Err(WriterError::InvalidOption(what.to_string()));
        if self.branching == 0 {
            return bad("branching must be at least 1");
        }
        if self.min_files_per_write > self.max_files_per_write {
            return bad("min_files_per_write is above max_files_per_write");
        }
        if self.min_file_size > self.max_file_size {
            return bad("min_file_size is above max_file_size");
        }
        if self.min_dedupe_percent > self.max_dedupe_percent || self.max_dedupe_percent > 100 {
            return bad("dedupe percentages must satisfy min <= max <= 100");
        }
        if self.delete_contents_percent > 100 {
            return bad("delete_contents_percent is above 100");
        }
        Ok(())
    }
}

/// Why a writer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriterError {
    /// The options cannot be used as given.
    #[error("invalid file writer option: {0}")]
    InvalidOption(String),
    /// Writing even one byte would leave less free space than the floor (kopia's
    /// `ErrCannotPerformIO`).
    #[error(
        "not enough free space in {dir}: {available} bytes available, floor is {floor} bytes; \
         free some space or lower free_space_floor_bytes"
    )]
    NoSpace {
        /// The data directory.
        dir: PathBuf,
        /// Bytes available to unprivileged users.
        available: u64,
        /// The configured floor.
        floor: u64,
    },
    /// A file system call failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriterError + 'a {
    move |source| WriterError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What one [`FileWriter::write_random_files`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteStats {
    /// Directory written into, relative to the data directory (`""` = the root).
    pub dir: String,
    /// Files created or overwritten.
    pub files: u32,
    /// Bytes written.
    pub bytes: u64,
    /// The share of duplicate blocks this write used, in percent.
    pub dedupe_percent: u8,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteStats {
    /// Directory deleted, or whose entries were deleted, relative to the data directory.
    pub dir: String,
    /// Entries removed (a removed directory counts once).
    pub entries: u32,
}

/// Writes and deletes random files in one data directory. Cheap to clone: clones share the
/// path lock.
#[derive(Debug, Clone)]
pub struct FileWriter {
    root: PathBuf,
    options: WriterOptions,
    locks: PathLocks,
}

impl FileWriter {
    /// A writer for `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>, options: WriterOptions) -> Result<Self, WriterError> {
        options.validate()?;
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err("create", &root))?;
        Ok(Self {
            root,
            options,
            locks: PathLocks::default(),
        })
    }

    /// The data directory this writer changes.
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    /// The options in use.
    pub fn options(&self) -> &WriterOptions {
        &self.options
    }

    /// Writes between `min_files_per_write` and `max_files_per_write` files named
    /// `file_<n>` into a random directory at a random depth, creating the branch
    /// (`dir_<i>/dir_<j>/...`) as needed and overwriting files of the same name.
    pub fn write_random_files<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Outcome<WriteStats>, WriterError> {
        let o = &self.options;
        let depth = rng.random_range(0..=o.max_depth);
        let mut rel = Vec::new();
        for _ in 0..depth {
            rel.push(format!("dir_{}", rng.random_range(0..o.branching)));
        }
        let files = rng.random_range(o.min_files_per_write..=o.max_files_per_write);
        let dedupe_percent = rng.random_range(o.min_dedupe_percent..=o.max_dedupe_percent);
        let mut budget = self.byte_budget()?;
        let dir = self.root.join(rel.join("/"));
        let _guard = self.locks.lock(&dir);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut shared = vec![0u8; BLOCK];
        rng.fill_bytes(&mut shared);
        let mut stats = WriteStats {
            dir: rel.join("/"),
            files: 0,
            bytes: 0,
            dedupe_percent,
        };
        for n in 0..files {
            if budget == 0 {
                break;
            }
            let size = rng
                .random_range(o.min_file_size..=o.max_file_size)
                .min(budget);
            let path = dir.join(format!("file_{n}"));
            write_file(&path, size, dedupe_percent, &shared, rng)?;
            budget -= size;
            stats.files += 1;
            stats.bytes += size;
        }
        if stats.files == 0 {
            return Ok(Outcome::noop("the write was asked for no files"));
        }
        Ok(Outcome::Done(stats))
    }

    /// Bytes this write may use: the I/O limit, cut down so the free-space floor holds.
    fn byte_budget(&self) -> Result<u64, WriterError> {
        let st =
            rustix::fs::statvfs(&self.root).map_err(|e| io_err("statvfs", &self.root)(e.into()))?;
        let available = st.f_bavail.saturating_mul(st.f_frsize);
        let floor = self.options.free_space_floor_bytes;
        let room = available.saturating_sub(floor);
        if room == 0 {
            return Err(WriterError::NoSpace {
                dir: self.root.clone(),
                available,
                floor,
            });
        }
        Ok(match self.options.io_limit_bytes {
            0 => room,
            limit => limit.min(room),
        })
    }

    /// Deletes one random subdirectory: descends at most a random depth in
    /// `1..=max_depth` through random subdirectories (stopping early at a leaf) and
    /// removes the directory reached. No subdirectory at all is a no-op.
    pub fn delete_random_subdirectory<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Outcome<DeleteStats>, WriterError> {
        if self.options.max_depth == 0 {
            return Err(WriterError::InvalidOption(
                "delete_random_subdirectory needs max_depth of at least 1".into(),
            ));
        }
        let depth = rng.random_range(1..=self.options.max_depth);
        let rel = self.descend(depth, rng)?;
        if rel.is_empty() {
            return Ok(Outcome::noop("the data directory has no subdirectory"));
        }
        let dir = self.root.join(rel.join("/"));
        let _guard = self.locks.lock(&dir);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(Outcome::Done(DeleteStats {
                dir: rel.join("/"),
                entries: 1,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::noop(
                "the directory vanished before it could be deleted",
            )),
            Err(e) => Err(io_err("delete", &dir)(e)),
        }
    }

    /// Picks a directory at a random depth in `0..=max_depth` (stopping early at a leaf)
    /// and deletes each of its entries with probability `delete_contents_percent`.
    pub fn delete_files<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Outcome<DeleteStats>, WriterError> {
        let depth = rng.random_range(0..=self.options.max_depth);
        let rel = self.descend(depth, rng)?;
        let pct = self.options.delete_contents_percent;
        self.delete_contents(
            &rel,
            |rng: &mut R| rng.random_ratio(u32::from(pct), 100),
            rng,
        )
    }

    /// Deletes every entry of the data directory (kopia's `DeleteEverything`); an empty
    /// directory is a no-op.
    pub fn delete_everything(&self) -> Result<Outcome<DeleteStats>, WriterError> {
        self.delete_contents(&[], |_: &mut ()| true, &mut ())
    }

    fn delete_contents<R: ?Sized>(
        &self,
        rel: &[String],
        mut pick: impl FnMut(&mut R) -> bool,
        rng: &mut R,
    ) -> Result<Outcome<DeleteStats>, WriterError> {
        let dir = self.root.join(rel.join("/"));
        let _guard = self.locks.lock(&dir);
        let mut names = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io_err("list", &dir))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Outcome::noop(
                    "the directory vanished before it could be listed",
                ));
            }
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        if names.is_empty() {
            return Ok(Outcome::noop(format!(
                "directory {:?} is empty",
                rel.join("/")
            )));
        }
        // Sorted so the same seed deletes the same entries whatever the listing order.
        names.sort();
        let mut entries = 0;
        for name in names {
            if !pick(rng) {
                continue;
            }
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io_err("delete", &path))?;
            entries += 1;
        }
        if entries == 0 {
            return Ok(Outcome::noop("no entry was picked for deletion"));
        }
        Ok(Outcome::Done(DeleteStats {
            dir: rel.join("/"),
            entries,
        }))
    }

    /// Random walk down at most `depth` levels through existing subdirectories; returns
    /// the relative components of the directory reached.
    fn descend<R: Rng + ?Sized>(
        &self,
        depth: u32,
        rng: &mut R,
    ) -> Result<Vec<String>, WriterError> {
        let mut rel: Vec<String> = Vec::new();
        for _ in 0..depth {
            let dir = self.root.join(rel.join("/"));
            let mut subdirs = Vec::new();
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in rd {
                let entry = entry.map_err(io_err("list", &dir))?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                    subdirs.push(name.to_string());
                }
            }
            if subdirs.is_empty() {
                break;
            }
            subdirs.sort();
            rel.push(subdirs.swap_remove(rng.random_range(0..subdirs.len())));
        }
        Ok(rel)
    }
}

/// Writes `size` bytes in blocks; each block is the shared block with probability
/// `dedupe_percent`, fresh random bytes otherwise.
fn write_file<R: Rng + ?Sized>(
    path: &Path,
    size: u64,
    dedupe_percent: u8,
    shared: &[u8],
    rng: &mut R,
) -> Result<(), WriterError> {
    let mut file = io::BufWriter::with_capacity(
        16 * BLOCK,
        File::create(path).map_err(io_err("create", path))?,
    );
    let mut block = vec![0u8; BLOCK];
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        let data = if rng.random_ratio(u32::from(dedupe_percent), 100) {
            &shared[..n]
        } else {
            rng.fill_bytes(&mut block[..n]);
            &block[..n]
        };
        file.write_all(data).map_err(io_err("write", path))?;
        left -= n as u64;
    }
    file.flush().map_err(io_err("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    fn writer(dir: &Path, options: WriterOptions) -> FileWriter {
        FileWriter::new(
            dir,
            WriterOptions {
                free_space_floor_bytes: 0,
                ..options
            },
        )
        .unwrap()
    }

    #[test]
    fn options_are_validated() {
        let check = |o: WriterOptions, msg: &str| {
            let err = o.validate().unwrap_err().to_string();
            assert!(err.contains(msg), "{err}");
        };
        check(
            WriterOptions {
                branching: 0,
                ..Default::default()
            },
            "branching",
        );
        check(
            WriterOptions {
                min_file_size: 9,
                max_file_size: 1,
                ..Default::default()
            },
            "min_file_size",
        );
        check(
            WriterOptions {
                max_dedupe_percent: 101,
                ..Default::default()
            },
            "dedupe",
        );
        check(
            WriterOptions {
                delete_contents_percent: 101,
                ..Default::default()
            },
            "delete_contents",
        );
        let json = r#"{"max_depth": 2, "typo": 1}"#;
        assert!(serde_json::from_str::<WriterOptions>(json).is_err());
        assert!(serde_json::from_str::<WriterOptions>("{}").is_ok());
    }

    #[test]
    fn io_limit_caps_the_bytes_of_one_write() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WriterOptions {
            min_files_per_write: 10,
            max_files_per_write: 10,
            min_file_size: 1000,
            max_file_size: 1000,
            io_limit_bytes: 2500,
            ..Default::default()
        };
        let w = writer(tmp.path(), o);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let stats = w.write_random_files(&mut rng).unwrap().done().unwrap();
        assert_eq!((stats.files, stats.bytes), (3, 2500));
    }

    #[test]
    fn full_dedupe_repeats_one_block() {
        let tmp = tempfile::tempdir().unwrap();
        let o = WriterOptions {
            max_depth: 0,
            min_files_per_write: 1,
            max_files_per_write: 1,
            min_file_size: 3 * BLOCK as u64,
            max_file_size: 3 * BLOCK as u64,
            min_dedupe_percent: 100,
            max_dedupe_percent: 100,
            ..Default::default()
        };
        writer(tmp.path(), o)
            .write_random_files(&mut Xoshiro256PlusPlus::seed_from_u64(2))
            .unwrap();
        let data = fs::read(tmp.path().join("file_0")).unwrap();
        assert_eq!(data.len(), 3 * BLOCK);
        assert_eq!(data[..BLOCK], data[BLOCK..2 * BLOCK]);
        assert_eq!(data[..BLOCK], data[2 * BLOCK..]);
    }
}
