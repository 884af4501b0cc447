//! Fingerprinting cost: 10,000 small (4 KiB) files in 100 directories, as kopia's
//! many-small-files test makes, and one 64 MiB file for the hashing rate in MB/s; each
//! with one hashing thread and with one per core. Files sit in the page cache, so this
//! measures walking and hashing, not the disk.
//! Run with `cargo bench -p stampede-robust --bench fingerprint`.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng};
use stampede_robust::{Fingerprint, Rng};

const SMALL_FILES: usize = 10_000;
const SMALL_SIZE: usize = 4096;
const LARGE_SIZE: usize = 64 * 1024 * 1024;

fn small_tree(root: &Path) {
    let mut rng = Rng::seed_from_u64(1);
    let mut buf = vec![0u8; SMALL_SIZE];
    for i in 0..SMALL_FILES {
        let dir = root.join(format!("dir_{:02}", i % 100));
        fs::create_dir_all(&dir).unwrap();
        rng.fill_bytes(&mut buf);
        fs::write(dir.join(format!("file_{i}")), &buf).unwrap();
    }
}

fn fingerprint(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    small_tree(&small);
    let mut group = c.benchmark_group("fingerprint 10k x 4 KiB files");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(SMALL_FILES as u64));
    for threads in [1, cores] {
        group.bench_function(format!("{threads} thread(s)"), |b| {
            b.iter(|| black_box(Fingerprint::with_threads(&small, threads).unwrap()))
        });
    }
    group.finish();

    let large = tmp.path().join("large");
    fs::create_dir_all(&large).unwrap();
    let mut data = vec![0u8; LARGE_SIZE];
    Rng::seed_from_u64(2).fill_bytes(&mut data);
    fs::write(large.join("big"), &data).unwrap();
    let mut group = c.benchmark_group("fingerprint 1 x 64 MiB file");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(LARGE_SIZE as u64));
    group.bench_function("1 thread", |b| {
        b.iter(|| black_box(Fingerprint::with_threads(&large, 1).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, fingerprint);
criterion_main!(benches);
