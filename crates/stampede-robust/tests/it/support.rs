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
