//! Load-tests a plain async closure: 2,000 calls per second for 3 seconds, at most 50 at a
//! time, each taking 1-10 ms, and prints what the worker did.
//!
//! Run it with `cargo run -p stampede-engine --example closure`.

use std::time::Duration;

use stampede_engine::{Schedule, WorkCtx, Worker, action_fn};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let worker = Worker::builder()
            .ident("example")
            .action(action_fn(|call| async move {
                // Pretend to do some work whose length depends on the call.
                let pause = 1 + call.intended.elapsed().subsec_nanos() % 10;
                tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
                Ok::<(), std::io::Error>(())
            }))
            .overtime(50)
            .build();
        let ctx = WorkCtx::for_duration(Duration::from_secs(3));
        let plan = Schedule::ConstantRate { rate: 2_000.0 }.into();
        match worker.work(&ctx, &plan).await {
            Ok(report) => println!("{report:#?}"),
            Err(error) => eprintln!("the worker refused to start: {error}"),
        }
    });
}
