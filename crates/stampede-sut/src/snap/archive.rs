//! The snapshot archive: a client's file tree as one byte stream, simple enough to write
//! and read in a few lines on both sides and to damage on purpose for the bug switches.
//!
//! ```text
//! stampede-snap 1\n
//! D 755 0 dir_0\n
//! F 644 5 dir_0/file_0\n<5 bytes>
//! L 777 6 link\n<6 bytes: the link target>
//! END\n
//! ```
//!
//! One header line per entry — kind (`D` directory, `F` file, `L` symlink), permission
//! bits in octal, data length in bytes, relative path (`/`-separated, UTF-8, no newline,
//! no `..`) — followed by that many data bytes. The root directory is not an entry. `END`
//! closes the stream, so a cut upload is refused rather than stored short.

/// First line of every archive.
pub(crate) const MAGIC: &[u8] = b"stampede-snap 1\n";
/// Last line of every archive.
pub(crate) const END: &[u8] = b"END\n";

/// One entry, borrowing from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// `b'D'`, `b'F'` or `b'L'`.
    pub(crate) kind: u8,
    /// Permission bits.
    pub(crate) mode: u32,
    /// Relative path.
    pub(crate) path: &'a str,
    /// File contents or link target; empty for directories.
    pub(crate) data: &'a [u8],
}

/// Splits an archive into its entries, or says what is wrong with it.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a snapshot archive: it must start with the line `stampede-snap 1`")?;
    let mut entries = Vec::new();
    loop {
        if rest == END {
            return Ok(entries);
        }
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the archive is cut short: no `END` line")?;
        let line = std::str::from_utf8(&rest[..nl])
            .map_err(|_| format!("entry {} has a header that is not UTF-8", entries.len()))?;
        let bad = || format!("bad entry header {line:?}: expected `KIND MODE SIZE PATH`");
        let mut fields = line.splitn(4, ' ');
        let (Some(kind), Some(mode), Some(size), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "D" | "F" | "L" => kind.as_bytes()[0],
            _ => return Err(bad()),
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
        let size: usize = size.parse().map_err(|_| bad())?;
        check_path(path)?;
        let data_end = nl
            .checked_add(1 + size)
            .filter(|&end| end <= rest.len())
            .ok_or_else(|| format!("the archive is cut short inside {path:?}"))?;
        entries.push(Entry {
            kind,
            mode,
            path,
            data: &rest[nl + 1..data_end],
        });
        rest = &rest[data_end..];
    }
}

/// Writes entries back into an archive.
pub(crate) fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let len = entries
        .iter()
        .map(|e| e.data.len() + e.path.len() + 32)
        .sum::<usize>();
    let mut out = Vec::with_capacity(MAGIC.len() + len + END.len());
    out.extend_from_slice(MAGIC);
    for e in entries {
        out.extend_from_slice(
            format!(
                "{} {:o} {} {}\n",
                e.kind as char,
                e.mode,
                e.data.len(),
                e.path
            )
            .as_bytes(),
        );
        out.extend_from_slice(e.data);
    }
    out.extend_from_slice(END);
    out
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "bad entry path {path:?}: expected a relative path without `.`, `..` or empty parts"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(&[
            Entry {
                kind: b'D',
                mode: 0o755,
                path: "d",
                data: b"",
            },
            Entry {
                kind: b'F',
                mode: 0o644,
                path: "d/f 1",
                data: b"hello\nworld",
            },
            Entry {
                kind: b'L',
                mode: 0o777,
                path: "l",
                data: b"d/f 1",
            },
        ])
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let entries = parse(&bytes).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].path, "d/f 1");
        assert_eq!(entries[1].data, b"hello\nworld");
        assert_eq!(entries[1].mode, 0o644);
        assert_eq!(encode(&entries), bytes);
        assert_eq!(parse(&encode(&[])).unwrap(), []);
    }

    #[test]
    fn damaged_archives_are_refused_with_a_reason() {
        let bytes = sample();
        let check = |bytes: &[u8], mentions: &str| {
            let err = parse(bytes).unwrap_err();
            assert!(err.contains(mentions), "{err}");
        };
        check(&bytes[..bytes.len() - 1], "cut short");
        check(&bytes[..bytes.len() - 10], "cut short");
        check(b"tar\n", "stampede-snap");
        check(b"stampede-snap 1\nX 1 0 a\nEND\n", "bad entry header");
        check(b"stampede-snap 1\nF 9 0 a\nEND\n", "bad entry header");
        check(b"stampede-snap 1\nF 644 0 ../a\nEND\n", "bad entry path");
        check(b"stampede-snap 1\nF 644 0 /a\nEND\n", "bad entry path");
        check(
            b"stampede-snap 1\nF 644 99 a\nxyEND\n",
            "cut short inside \"a\"",
        );
    }
}
