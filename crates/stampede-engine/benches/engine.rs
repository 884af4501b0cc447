//! The engine's own costs: the scheduler's next tick, and one call of a closed-model worker
//! to an in-process no-op action (slot, gossip check, action future, sample to the sink).
//! Run with `cargo bench -p stampede-engine`.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

use stampede_engine::{Plan, Schedule, Segment, Stage, WorkCtx, Worker, action_fn};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn engine(c: &mut Criterion) {
    // The tick loop's arithmetic: the next intended start of a constant and of a ramping
    // rate (the ramp solves a quadratic per tick).
    let constant = Schedule::ConstantRate { rate: 50_000.0 };
    let mut ticks = constant.arrival_offsets(Segment { index: 1, count: 2 });
    c.bench_function("next tick, constant rate", |b| {
        b.iter(|| black_box(ticks.next()))
    });
    let ramp = Schedule::RampingRate {
        start_rate: 0.0,
        stages: vec![Stage {
            duration: Duration::from_secs(1_000_000),
            target: 1e6,
        }],
    };
    let mut ticks = ramp.arrival_offsets(Segment::WHOLE);
    c.bench_function("next tick, ramping rate", |b| {
        b.iter(|| black_box(ticks.next()))
    });

    let rt = runtime();
    c.bench_function("one call of a no-op action (closed model)", |b| {
        b.iter_custom(|iters| {
            let worker = Worker::builder()
                .action(action_fn(|_| std::future::ready(Ok::<(), &str>(()))))
                .build();
            let plan: Plan = Schedule::ConstantVus {
                vus: 1,
                iterations: Some(iters),
            }
            .into();
            let start = Instant::now();
            rt.block_on(worker.work(&WorkCtx::default(), &plan))
                .unwrap();
            start.elapsed()
        })
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
