//! The cost of recording one sample (three HDR views + counters) and of merging one
//! interval snapshot. Run with `cargo bench -p stampede-metrics`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use stampede_core::{Sample, Sink};
use stampede_metrics::{Recorder, Snapshot};

fn record(c: &mut Criterion) {
    let recorder = Recorder::new();
    let t0 = Instant::now();
    let mut i = 0u64;
    c.bench_function("record one sample", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            let sent = t0 + Duration::from_nanos(i % 50_000);
            let sample = Sample {
                intended: t0,
                sent,
                done: sent + Duration::from_nanos(100_000 + i % 900_000),
                outcome: Ok(()),
            };
            recorder.record(black_box(&sample));
        })
    });
    let interval = recorder.take();
    let mut total = Snapshot::default();
    c.bench_function("merge one interval snapshot", |b| {
        b.iter(|| total.merge(black_box(&interval)))
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
