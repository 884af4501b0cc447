//! The archive a snapshot travels in: the format of the sut's snapshot store
//! (`stampede-snap 1`, then per entry a header line `KIND MODE SIZE PATH` — `D`, `F` or
//! `L`, permission bits in octal, data length, relative path — and that many bytes of
//! file contents or link target, then `END`). Packing walks a directory in name order;
//! unpacking refuses absolute paths and `..`, and sets directory modes last so a
//! read-only directory can still be filled.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use walkdir::WalkDir;

const MAGIC: &[u8] = b"stampede-snap 1\n";
const END: &[u8] = b"END\n";

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Packs the tree under `source` (not the root itself) into one archive.
pub(crate) fn pack(source: &Path) -> io::Result<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    for entry in WalkDir::new(source).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(source)
            .map_err(io::Error::other)?;
        let rel = rel.to_str().filter(|r| !r.contains('\n')).ok_or_else(|| {
            invalid(format!(
                "{rel:?}: the archive needs UTF-8 paths without newlines"
            ))
        })?;
        let meta = entry.path().symlink_metadata()?;
        let mode = meta.permissions().mode() & 0o7777;
        let (kind, data) = if meta.is_dir() {
            ('D', Vec::new())
        } else if meta.file_type().is_symlink() {
            (
                'L',
                fs::read_link(entry.path())?.into_os_string().into_vec(),
            )
        } else if meta.is_file() {
            ('F', fs::read(entry.path())?)
        } else {
            return Err(invalid(format!(
                "{rel}: only files, directories and symlinks can be archived"
            )));
        };
        out.extend_from_slice(format!("{kind} {mode:o} {} {rel}\n", data.len()).as_bytes());
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(END);
    Ok(out)
}

/// Unpacks an archive into the existing directory `target`.
pub(crate) fn unpack(mut rest: &[u8], target: &Path) -> io::Result<()> {
    rest = rest
        .strip_prefix(MAGIC)
        .ok_or_else(|| invalid("the restored data is not a snapshot archive".into()))?;
    let mut dirs = Vec::new();
    while rest != END {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| invalid("the restored archive is cut short".into()))?;
        let line = std::str::from_utf8(&rest[..nl])
            .map_err(|_| invalid("an archive header is not UTF-8".into()))?;
        let bad = || invalid(format!("bad archive header {line:?}"));
        let mut fields = line.splitn(4, ' ');
        let (Some(kind), Some(mode), Some(size), Some(rel)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
        let size: usize = size.parse().map_err(|_| bad())?;
        let end = nl
            .checked_add(1 + size)
            .filter(|&end| end <= rest.len())
            .ok_or_else(|| invalid(format!("the restored archive is cut short inside {rel:?}")))?;
        let data = &rest[nl + 1..end];
        rest = &rest[end..];
        let rel_path = Path::new(rel);
        if !rel_path
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(invalid(format!(
                "archive path {rel:?} leaves the target directory"
            )));
        }
        let path = target.join(rel_path);
        match kind {
            "D" => {
                fs::create_dir_all(&path)?;
                dirs.push((path, mode));
            }
            "F" => {
                fs::write(&path, data)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            }
            "L" => std::os::unix::fs::symlink(OsStr::from_bytes(data), &path)?,
            _ => return Err(bad()),
        }
    }
    for (path, mode) in dirs.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{Fingerprint, compare};

    #[test]
    fn a_tree_round_trips_to_the_same_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("a/b/f"), b"hello\nEND\n").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        fs::set_permissions(src.join("empty"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("a/b/f", src.join("link")).unwrap();
        fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o555)).unwrap();
        let archive = pack(&src).unwrap();
        let dst = tmp.path().join("dst");
        fs::create_dir(&dst).unwrap();
        unpack(&archive, &dst).unwrap();
        let report = compare(
            &Fingerprint::of(&src).unwrap(),
            &Fingerprint::of(&dst).unwrap(),
        );
        assert!(report.is_clean(), "{report}");
        for dir in [&src, &dst] {
            fs::set_permissions(dir.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn hostile_or_cut_archives_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let check = |archive: &[u8], mentions: &str| {
            let err = unpack(archive, tmp.path()).unwrap_err().to_string();
            assert!(err.contains(mentions), "{err}");
        };
        check(
            b"stampede-snap 1\nF 644 1 ../x\nxEND\n",
            "leaves the target",
        );
        check(b"stampede-snap 1\nF 644 1 /x\nxEND\n", "leaves the target");
        check(b"stampede-snap 1\nF 644 9 x\nxEND\n", "cut short inside");
        check(b"stampede-snap 1\nF 644 1 x\nx", "cut short");
        check(b"tar", "not a snapshot archive");
    }
}
