//! Execution strategies: who runs when, how many at once, with which deadline.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stampede_scale::{Ctx, RunFailure, Stopped, Strategy, TestFn};

use crate::within;

/// Counts functions running at once and the order they started in.
#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    most: AtomicUsize,
    started: Mutex<Vec<usize>>,
}

impl Probe {
    /// `n` functions that each hold a slot for `hold`; function `fail` (if any) fails.
    fn fns(self: &Arc<Self>, n: usize, hold: Duration, fail: Option<usize>) -> Vec<TestFn> {
        (0..n)
            .map(|i| -> TestFn {
                let probe = self.clone();
                Box::new(move |_ctx: Ctx| {
                    Box::pin(async move {
                        probe.started.lock().unwrap().push(i);
                        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                        probe.most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(hold).await;
                        probe.running.fetch_sub(1, Ordering::SeqCst);
                        match fail {
                            Some(f) if f == i => Err(RunFailure::message("boom")),
                            _ => Ok(()),
                        }
                    })
                })
            })
            .collect()
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    fn started(&self) -> Vec<usize> {
        self.started.lock().unwrap().clone()
    }
}

/// Runs `n` functions of 30 ms under `strategy`; checks the most that ran at once.
async fn check(strategy: Strategy, n: usize, most_at_once: usize) -> Arc<Probe> {
    let probe = Arc::new(Probe::default());
    let errors = within(
        Duration::from_secs(2),
        strategy.run(
            &Ctx::default(),
            probe.fns(n, Duration::from_millis(30), None),
        ),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(probe.most(), most_at_once, "{strategy:?}");
    let mut started = probe.started();
    started.sort_unstable();
    assert_eq!(
        started,
        (0..n).collect::<Vec<_>>(),
        "every function runs once"
    );
    probe
}

fn parallel(limit: usize) -> Strategy {
    Strategy::Parallel {
        limit: NonZeroUsize::new(limit).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_runs_one_at_a_time_in_order() {
    let probe = check(Strategy::Linear, 5, 1).await;
    assert_eq!(probe.started(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_everything_at_once() {
    let start = Instant::now();
    check(Strategy::Concurrent, 12, 12).await;
    assert!(
        start.elapsed() < Duration::from_millis(12 * 30),
        "not concurrent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_never_exceeds_its_limit_and_reaches_it() {
    check(parallel(3), 10, 3).await;
    check(parallel(1), 4, 1).await;
    check(parallel(20), 6, 6).await;
    check(Strategy::from_concurrency(4), 9, 4).await;
}

#[tokio::test]
async fn wrappers_keep_the_inner_limit() {
    let strategy = parallel(2)
        .with_timeout(Duration::from_secs(1))
        .shuffled(Some(3));
    check(strategy, 7, 2).await;
}

#[tokio::test]
async fn shuffle_with_a_seed_gives_the_same_order_every_time() {
    let order = |seed| async move {
        let probe = check(Strategy::Linear.shuffled(Some(seed)), 8, 1).await;
        probe.started()
    };
    let first = order(11).await;
    assert_eq!(first, order(11).await);
    assert_ne!(
        first,
        (0..8).collect::<Vec<_>>(),
        "seed 11 left the order as it was"
    );
    assert_ne!(first, order(12).await);
}

#[tokio::test]
async fn every_function_runs_and_errors_name_their_position() {
    for strategy in [Strategy::Linear, Strategy::Concurrent, parallel(2)] {
        let probe = Arc::new(Probe::default());
        let fns = probe.fns(4, Duration::from_millis(1), Some(2));
        let errors = strategy.run(&Ctx::default(), fns).await;
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["run 2: boom"], "{strategy:?}");
        assert_eq!(probe.started().len(), 4, "{strategy:?}");
    }
}

/// Functions that report the deadline they were given, then wait for `hold`.
fn deadline_fns(n: usize, hold: Duration, seen: &Arc<Mutex<Vec<Duration>>>) -> Vec<TestFn> {
    (0..n)
        .map(|_| -> TestFn {
            let seen = seen.clone();
            Box::new(move |ctx: Ctx| {
                Box::pin(async move {
                    let left = ctx.deadline().map(|d| d - tokio::time::Instant::now());
                    seen.lock().unwrap().push(left.unwrap_or(Duration::MAX));
                    match ctx.run(tokio::time::sleep(hold)).await {
                        Ok(()) => Ok(()),
                        Err(why) => Err(RunFailure::Stopped(why)),
                    }
                })
            })
        })
        .collect()
}

#[tokio::test]
async fn the_timeout_is_per_run_counted_from_its_start() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Three runs of 60 ms one after the other: 180 ms in all, each within its own 150 ms.
    let strategy = Strategy::Linear.with_timeout(Duration::from_millis(150));
    let errors = strategy
        .run(
            &Ctx::default(),
            deadline_fns(3, Duration::from_millis(60), &seen),
        )
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    for left in seen.lock().unwrap().iter() {
        assert!(
            *left > Duration::from_millis(100),
            "deadline not fresh: {left:?}"
        );
    }
}

#[tokio::test]
async fn runs_past_their_timeout_fail_with_deadline_exceeded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let strategy = Strategy::Concurrent.with_timeout(Duration::from_millis(30));
    let start = Instant::now();
    let errors = within(
        Duration::from_secs(2),
        strategy.run(
            &Ctx::default(),
            deadline_fns(3, Duration::from_secs(60), &seen),
        ),
    )
    .await;
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(errors.len(), 3);
    for e in &errors {
        assert!(matches!(
            e.failure,
            RunFailure::Stopped(Stopped::DeadlineExceeded)
        ));
        assert!(
            e.to_string().ends_with(": context deadline exceeded"),
            "{e}"
        );
    }
}
