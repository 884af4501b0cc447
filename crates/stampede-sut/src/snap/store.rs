//! The snapshot store on disk: one directory per client holding its token and its
//! snapshots, every write made durable (temp file, fsync, rename, fsync of the directory)
//! before it is acknowledged, so a `kill -9` loses nothing that was acknowledged — unless
//! the `lose_last_write` bug switch keeps the newest snapshot in memory only.
//!
//! ```text
//! <dir>/clients/<client>/token
//! <dir>/clients/<client>/snapshots/<id>
//! <dir>/clients/<client>/snapshots/.<name>.<run>.<random>.tmp   (a write in progress)
//! ```
//!
//! `<run>` is random per open store, so GC removes only the temp files of earlier runs
//! (writes cut by a crash), never one that a concurrent upload is about to rename.
//!
//! All methods block on file I/O: call them from a blocking thread.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{SnapBugs, SnapConfig, archive};

/// A snapshot acknowledged but, because of the `lose_last_write` bug, held in memory only.
#[derive(Debug)]
struct Pending {
    client: String,
    id: String,
    bytes: Bytes,
}

/// The open store. See the module docs.
#[derive(Debug)]
pub(crate) struct SnapStore {
    clients: PathBuf,
    pub(crate) admin_token: Option<String>,
    pub(crate) max_snapshot_bytes: u64,
    bugs: SnapBugs,
    /// Token -> client, loaded from disk at open.
    tokens: RwLock<HashMap<String, String>>,
    pending: Mutex<Option<Pending>>,
    /// Marks this run's temp files.
    run: String,
}

impl SnapStore {
    /// Opens (creating if needed) the store in `config.dir`, loading the client tokens.
    pub(crate) fn open(config: &SnapConfig) -> io::Result<SnapStore> {
        let clients = config.dir.join("clients");
        fs::create_dir_all(&clients)?;
        let mut tokens = HashMap::new();
        for entry in fs::read_dir(&clients)? {
            let entry = entry?;
            let Ok(client) = entry.file_name().into_string() else {
                continue;
            };
            match fs::read_to_string(entry.path().join("token")) {
                Ok(token) => {
                    tokens.insert(token.trim().to_owned(), client);
                }
                // A removed client keeps its snapshots but has no token.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(SnapStore {
            clients,
            admin_token: config.admin_token.clone(),
            max_snapshot_bytes: config.max_snapshot_bytes,
            bugs: config.bugs,
            tokens: RwLock::new(tokens),
            pending: Mutex::new(None),
            run: random_hex(4)?,
        })
    }

    /// The client a token belongs to.
    pub(crate) fn client_for(&self, token: &str) -> Option<String> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens.get(token).cloned()
    }

    /// Issues `client` a token, or returns the one it already has.
    pub(crate) fn authorize(&self, client: &str) -> io::Result<String> {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, _)) = tokens.iter().find(|(_, c)| *c == client) {
            return Ok(token.clone());
        }
        let token = random_hex(16)?;
        let dir = self.clients.join(client);
        fs::create_dir_all(dir.join("snapshots"))?;
        sync_dir(&self.clients)?;
        self.write_durably(&dir, "token", token.as_bytes())?;
        tokens.insert(token.clone(), client.to_owned());
        Ok(token)
    }

    /// Revokes `client`'s token; its snapshots stay (as kopia's `server user delete`).
    /// False when it had none.
    pub(crate) fn remove_client(&self, client: &str) -> io::Result<bool> {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        let before = tokens.len();
        tokens.retain(|_, c| c != client);
        if tokens.len() == before {
            return Ok(false);
        }
        let dir = self.clients.join(client);
        remove_durably(&dir, "token")?;
        Ok(true)
    }

    /// Stores a snapshot (after the bug switches have had their way) and returns its id.
    pub(crate) fn put(&self, client: &str, archive: Bytes) -> Result<String, PutError> {
        let entries = archive::parse(&archive).map_err(PutError::Invalid)?;
        let archive = match damage(&entries, self.bugs) {
            Some(damaged) => Bytes::from(damaged),
            None => archive,
        };
        let id = new_id().map_err(PutError::Io)?;
        if self.bugs.lose_last_write {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            // The previous write reaches the disk only now; the new one stays in memory.
            if let Some(p) = pending.take() {
                self.write_durably(&self.snapshots(&p.client), &p.id, &p.bytes)
                    .map_err(PutError::Io)?;
            }
            *pending = Some(Pending {
                client: client.to_owned(),
                id: id.clone(),
                bytes: archive,
            });
            return Ok(id);
        }
        self.write_durably(&self.snapshots(client), &id, &archive)
            .map_err(PutError::Io)?;
        Ok(id)
    }

    /// The ids of `client`'s snapshots, oldest first.
    pub(crate) fn list(&self, client: &str) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        match fs::read_dir(self.snapshots(client)) {
            Ok(dir) => {
                for entry in dir {
                    if let Ok(name) = entry?.file_name().into_string()
                        && !name.starts_with('.')
                    {
                        ids.push(name);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(p) = self.pending_id(client) {
            ids.push(p);
        }
        ids.sort();
        Ok(ids)
    }

    /// One snapshot's archive; `None` when `client` has no snapshot `id`.
    pub(crate) fn get(&self, client: &str, id: &str) -> io::Result<Option<Bytes>> {
        {
            let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = pending
                .as_ref()
                .filter(|p| p.client == client && p.id == id)
            {
                return Ok(Some(p.bytes.clone()));
            }
        }
        match fs::read(self.snapshots(client).join(id)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes one snapshot; false when `client` has no snapshot `id`.
    pub(crate) fn delete(&self, client: &str, id: &str) -> io::Result<bool> {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending
                .as_ref()
                .is_some_and(|p| p.client == client && p.id == id)
            {
                *pending = None;
                return Ok(true);
            }
        }
        match remove_durably(&self.snapshots(client), id) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the temp files of writes that never finished (cut by a crash of an earlier
    /// run); returns how many.
    pub(crate) fn gc(&self) -> io::Result<usize> {
        let mut removed = 0;
        for client in fs::read_dir(&self.clients)? {
            let dir = client?.path().join("snapshots");
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let this_run = name.contains(&format!(".{}.", self.run));
                if name.starts_with('.') && name.ends_with(".tmp") && !this_run {
                    fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
            if removed > 0 {
                sync_dir(&dir)?;
            }
        }
        Ok(removed)
    }

    /// Writes `dir/name` so that it is either absent or complete and on disk, even if the
    /// process or machine dies at any point: temp file, fsync, rename, fsync of the
    /// directory.
    fn write_durably(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = dir.join(format!(".{name}.{}.{}.tmp", self.run, random_hex(4)?));
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    }

    fn snapshots(&self, client: &str) -> PathBuf {
        self.clients.join(client).join("snapshots")
    }

    /// The id of `client`'s in-memory snapshot, if it has one.
    fn pending_id(&self, client: &str) -> Option<String> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending
            .as_ref()
            .filter(|p| p.client == client)
            .map(|p| p.id.clone())
    }
}

/// Why a snapshot was not stored.
#[derive(Debug)]
pub(crate) enum PutError {
    /// The upload is not a valid archive; the text says why.
    Invalid(String),
    /// The disk failed.
    Io(io::Error),
}

/// The archive as the bug switches would store it; `None` when none applies.
fn damage(entries: &[archive::Entry<'_>], bugs: SnapBugs) -> Option<Vec<u8>> {
    let first_file = |nonempty: bool| {
        entries
            .iter()
            .position(|e| e.kind == b'F' && (!nonempty || !e.data.is_empty()))
    };
    if bugs.drop_file
        && let Some(i) = first_file(false)
    {
        let mut kept = entries.to_vec();
        kept.remove(i);
        return Some(archive::encode(&kept));
    }
    if bugs.flip_byte
        && let Some(i) = first_file(true)
    {
        let mut flipped = entries[i].data.to_vec();
        flipped[0] ^= 0xff;
        let mut changed = entries.to_vec();
        changed[i].data = &flipped;
        return Some(archive::encode(&changed));
    }
    None
}

fn remove_durably(dir: &Path, name: &str) -> io::Result<()> {
    fs::remove_file(dir.join(name))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A new snapshot id: time-ordered hex, with random digits so ids never collide.
fn new_id() -> io::Result<String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{nanos:024x}{}", random_hex(4)?))
}

fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Bytes {
        let entries: Vec<_> = files
            .iter()
            .map(|(path, data)| archive::Entry {
                kind: b'F',
                mode: 0o644,
                path,
                data,
            })
            .collect();
        Bytes::from(archive::encode(&entries))
    }

    fn open(dir: &Path, bugs: SnapBugs) -> SnapStore {
        SnapStore::open(&SnapConfig {
            bugs,
            ..SnapConfig::new(dir)
        })
        .unwrap()
    }

    #[test]
    fn snapshots_and_tokens_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path(), SnapBugs::default());
        let token = store.authorize("a").unwrap();
        assert_eq!(store.authorize("a").unwrap(), token, "idempotent");
        let one = archive(&[("x", b"1")]);
        let id = store.put("a", one.clone()).unwrap();
        let other = store.put("a", archive(&[])).unwrap();
        drop(store);

        let store = open(tmp.path(), SnapBugs::default());
        assert_eq!(store.client_for(&token).as_deref(), Some("a"));
        assert_eq!(store.list("a").unwrap(), [id.clone(), other.clone()]);
        assert_eq!(store.get("a", &id).unwrap(), Some(one));
        assert_eq!(
            store.get("b", &id).unwrap(),
            None,
            "clients see only their own"
        );
        assert!(store.delete("a", &other).unwrap());
        assert!(!store.delete("a", &other).unwrap());
        assert!(store.remove_client("a").unwrap());
        assert_eq!(store.client_for(&token), None);
        assert_eq!(
            store.list("a").unwrap(),
            [id],
            "removal keeps the snapshots"
        );
        assert!(matches!(
            store.put("a", Bytes::from_static(b"junk")),
            Err(PutError::Invalid(_))
        ));
    }

    #[test]
    fn gc_removes_unfinished_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path(), SnapBugs::default());
        store.authorize("a").unwrap();
        let dir = store.snapshots("a");
        fs::write(dir.join(".x.1234.5678.tmp"), "half").unwrap();
        let in_flight = dir.join(format!(".y.{}.5678.tmp", store.run));
        fs::write(&in_flight, "writing").unwrap();
        assert_eq!(store.list("a").unwrap(), Vec::<String>::new());
        assert_eq!(store.gc().unwrap(), 1);
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [in_flight], "a write of this run is left alone");
    }

    #[test]
    fn bug_switches_damage_what_is_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[("empty", b""), ("a", b"abc"), ("b", b"xyz")];
        let check = |bugs: SnapBugs, want: &[(&str, &[u8])]| {
            let store = open(tmp.path(), bugs);
            store.authorize("c").unwrap();
            let id = store.put("c", archive(files)).unwrap();
            assert_eq!(
                store.get("c", &id).unwrap(),
                Some(archive(want)),
                "{bugs:?}"
            );
        };
        check(SnapBugs::default(), files);
        let drop_file = SnapBugs {
            drop_file: true,
            ..SnapBugs::default()
        };
        check(drop_file, &[("a", b"abc"), ("b", b"xyz")]);
        let flip_byte = SnapBugs {
            flip_byte: true,
            ..SnapBugs::default()
        };
        check(
            flip_byte,
            &[("empty", b""), ("a", b"\x9ebc"), ("b", b"xyz")],
        );
    }

    #[test]
    fn lose_last_write_keeps_the_newest_snapshot_in_memory_only() {
        let tmp = tempfile::tempdir().unwrap();
        let bugs = SnapBugs {
            lose_last_write: true,
            ..SnapBugs::default()
        };
        let store = open(tmp.path(), bugs);
        store.authorize("c").unwrap();
        let first = store.put("c", archive(&[("a", b"1")])).unwrap();
        let second = store.put("c", archive(&[("a", b"2")])).unwrap();
        assert_eq!(store.list("c").unwrap(), [first.clone(), second.clone()]);
        assert!(store.get("c", &second).unwrap().is_some());
        // A crash: the store is dropped without any shutdown step.
        drop(store);
        let store = open(tmp.path(), bugs);
        assert_eq!(store.list("c").unwrap(), [first]);
        assert_eq!(store.get("c", &second).unwrap(), None);
    }
}
