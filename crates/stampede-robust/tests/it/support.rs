//! Helpers shared by the integration tests.

use std::fs;
use std::path::Path;

use rand::SeedableRng;
use stampede_robust::{CommandConfig, CommandSnapshotter, FileWriter, Rng, WriterOptions};

/// A seeded RNG.
pub(crate) fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Writer options for small, fast trees that ignore the disk's free space.
pub(crate) fn small_tree() -> WriterOptions {
    WriterOptions {
        max_depth: 3,
        branching: 2,
        min_files_per_write: 2,
        max_files_per_write: 8,
        min_file_size: 0,
        max_file_size: 20_000,
        free_space_floor_bytes: 0,
        ..WriterOptions::default()
    }
}

/// A harness with clients under `dir/clients`, an in-memory metadata store and small trees.
pub(crate) fn harness<S: stampede_robust::Snapshotter>(
    dir: &Path,
    snapshotter: S,
    seed: u64,
) -> stampede_robust::Harness<S, stampede_robust::MemoryStore> {
    stampede_robust::Harness::new(
        dir.join("clients"),
        std::sync::Arc::new(snapshotter),
        std::sync::Arc::new(stampede_robust::MemoryStore::new()),
        seed,
    )
    .with_writer_options(small_tree())
}

/// A writer on `dir` that has already written `writes` batches.
pub(crate) fn tree(dir: &Path, seed: u64, writes: usize) -> FileWriter {
    let writer = FileWriter::new(dir, small_tree()).unwrap();
    let mut rng = rng(seed);
    for _ in 0..writes {
        writer.write_random_files(&mut rng).unwrap();
    }
    writer
}

/// Copies a tree, keeping permission bits (as `cp -r` does for a fresh copy).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&entry.path(), &target);
            fs::set_permissions(&target, entry.metadata().unwrap().permissions()).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A tar snapshotter keeping `<id>.tar` files in `repo`; `extra` goes into the snapshot
/// command's tar options (e.g. a deliberately broken `--exclude`).
pub(crate) fn tar_snapshotter(repo: &Path, extra: &str) -> CommandSnapshotter {
    let mut config = CommandConfig::new(
        repo.to_str().unwrap(),
        format!(
            "id={{client}}-$(date +%s%N); tar {extra} -C {{source}} -cf {{repo}}/$id.tar . && echo $id"
        ),
        "tar -C {target} -xf {repo}/{id}.tar",
        "rm {repo}/{id}.tar",
    );
    config.list = Some(
        "cd {repo} && for f in *.tar; do [ -e \"$f\" ] && echo \"${f%.tar}\"; done; true".into(),
    );
    config.gc = Some("find {repo} -name '*.tmp' -delete".into());
    config.timeout = "30s".into();
    CommandSnapshotter::new(config).unwrap()
}

/// A snapshot store in this process (the sut on port 0 with its store on), restartable on
/// the same port and data directory as if it had been killed.
pub(crate) struct Sut {
    server: std::sync::Mutex<Option<stampede_sut::Server>>,
    addr: std::net::SocketAddr,
    snap: stampede_sut::SnapConfig,
}

impl Sut {
    pub(crate) fn start(dir: &Path, bugs: stampede_sut::SnapBugs) -> std::sync::Arc<Sut> {
        let snap = stampede_sut::SnapConfig {
            bugs,
            ..stampede_sut::SnapConfig::new(dir)
        };
        let server = stampede_sut::Server::start_with_store(sut_config(None), snap.clone())
            .expect("sut with store starts");
        std::sync::Arc::new(Sut {
            addr: server.local_addr(),
            server: std::sync::Mutex::new(Some(server)),
            snap,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server without any shutdown step for the store, then starts it again.
    pub(crate) fn restart(&self) -> Result<(), String> {
        let mut slot = self.server.lock().unwrap();
        drop(slot.take());
        let server =
            stampede_sut::Server::start_with_store(sut_config(Some(self.addr)), self.snap.clone())
                .map_err(|e| e.to_string())?;
        *slot = Some(server);
        Ok(())
    }

    /// An `http` snapshotter for this store whose restart hook restarts it.
    pub(crate) fn snapshotter(self: &std::sync::Arc<Self>) -> stampede_robust::HttpSnapshotter {
        let sut = self.clone();
        stampede_robust::HttpSnapshotter::new(stampede_robust::HttpConfig::new(self.url()))
            .unwrap()
            .with_restart(std::sync::Arc::new(move || sut.restart()))
    }
}

fn sut_config(addr: Option<std::net::SocketAddr>) -> stampede_sut::Config {
    let default = stampede_sut::Config::default();
    stampede_sut::Config {
        addr: addr.unwrap_or(default.addr),
        threads: 2,
        ..default
    }
}
