//! The engine's behaviour, ported from pusher's own tests and extended to the open model's
//! accounting (late ticks), ramps and the closed model.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use stampede_engine::{
    Action, CallCtx, Completion, FnAction, GossipReceiver, Gossiper, Hire, Plan, Schedule, Stage,
    WorkCtx, WorkError, WorkReport, Worker, action_fn, farm, force,
};

/// Gossip counted by kind.
#[derive(Default)]
struct Counters {
    before: AtomicU64,
    after: AtomicU64,
    failed: AtomicU64,
    canceled: AtomicU64,
}

/// A listener that counts what it hears, and whether `stop` ran after `listen` ended.
#[derive(Default)]
struct Tally {
    counters: Arc<Counters>,
    listening: Arc<AtomicU64>,
    stops_after_listen: AtomicU64,
    workers: Mutex<Vec<String>>,
}

impl Tally {
    fn get(&self) -> (u64, u64, u64, u64) {
        let c = &self.counters;
        (
            c.before.load(Ordering::SeqCst),
            c.after.load(Ordering::SeqCst),
            c.failed.load(Ordering::SeqCst),
            c.canceled.load(Ordering::SeqCst),
        )
    }
}

impl Gossiper for Tally {
    fn listen(&self, worker: &str, mut gossips: GossipReceiver) -> LocalBoxFuture<'static, ()> {
        self.workers.lock().unwrap().push(worker.to_string());
        let counters = self.counters.clone();
        let listening = self.listening.clone();
        listening.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            while let Some(gossip) = gossips.recv().await {
                let counter = if gossip.before_action() {
                    &counters.before
                } else if gossip.canceled() {
                    &counters.canceled
                } else if gossip.sample.is_some_and(|s| s.outcome.is_err()) {
                    &counters.failed
                } else {
                    &counters.after
                };
                counter.fetch_add(1, Ordering::SeqCst);
            }
            listening.fetch_sub(1, Ordering::SeqCst);
        })
    }

    fn stop(&self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            if self.listening.load(Ordering::SeqCst) == 0 {
                self.stops_after_listen.fetch_add(1, Ordering::SeqCst);
            }
        })
    }
}

fn listeners(tally: &Arc<Tally>) -> Vec<Arc<dyn Gossiper>> {
    vec![tally.clone() as Arc<dyn Gossiper>]
}

type NoopFn = fn(CallCtx) -> std::future::Ready<Result<(), &'static str>>;

fn noop() -> FnAction<NoopFn> {
    action_fn((|_| std::future::ready(Ok(()))) as NoopFn)
}

fn rate(rate: f64) -> Plan {
    Schedule::ConstantRate { rate }.into()
}

/// Pusher's `Work(rps, duration, ...)`.
async fn work_for<A: Action>(worker: &Worker<A>, duration: Duration, plan: Plan) -> WorkReport {
    let ctx = WorkCtx::for_duration(duration);
    worker.work(&ctx, &plan).await.expect("a valid worker")
}

fn assert_accounting(report: &WorkReport) {
    assert_eq!(
        report.scheduled,
        report.sent + report.dropped_no_slot + report.dropped_late,
        "sent + dropped = scheduled: {report:?}"
    );
    assert_eq!(
        report.sent,
        report.completed + report.interrupted,
        "{report:?}"
    );
}

#[tokio::test]
async fn validation_order_and_messages() {
    let ctx = WorkCtx::for_duration(Duration::from_millis(50));
    let missing = Hire::<FnAction<NoopFn>>::default().overtime(-1).build();
    let err = missing.work(&ctx, &rate(0.0)).await.unwrap_err();
    assert!(matches!(err, WorkError::MissingAction), "{err}");
    assert_eq!(err.to_string(), "action is missing: not provided");

    let worker = Worker::builder().action(noop()).overtime(-1).build();
    let err = worker.work(&ctx, &rate(0.0)).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid rate: must be positive");
    let err = worker.work(&ctx, &rate(2e9)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid rate: too large, resulting tick < 1ns"
    );
    let err = worker.work(&ctx, &rate(10.0)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid overtime: must be more or equal zero"
    );
    assert!(
        !worker.config().busy,
        "a validation failure leaves the worker free"
    );
    assert_eq!(worker.config().capacity, 0);
    assert_eq!(worker.config().ident.as_ref(), "judas");
}

#[tokio::test]
async fn a_busy_worker_refuses_a_second_work() {
    let worker = Worker::builder().action(noop()).build();
    let ctx = WorkCtx::for_duration(Duration::from_millis(200));
    let plan = rate(100.0);
    let (first, second) = tokio::join!(worker.work(&ctx, &plan), async {
        tokio::task::yield_now().await;
        worker.work(&ctx, &plan).await
    });
    assert!(first.is_ok());
    assert_eq!(
        second.unwrap_err().to_string(),
        "worker is busy: try again later"
    );
    assert!(!worker.config().busy);
}

#[tokio::test]
async fn zero_overtime_cancels_every_tick() {
    let called = Rc::new(AtomicU64::new(0));
    let seen = called.clone();
    let tally = Arc::new(Tally::default());
    let worker = Worker::builder()
        .action(action_fn(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<(), &str>(()))
        }))
        .overtime(0)
        .gossips(listeners(&tally))
        .build();
    let report = worker
        .work(
            &WorkCtx::for_duration(Duration::from_millis(300)),
            &rate(100.0),
        )
        .await;
    let report = report.unwrap();
    assert_eq!(called.load(Ordering::SeqCst), 0);
    assert!(report.dropped_no_slot >= 20, "{report:?}");
    assert_eq!(
        tally.get().3,
        report.dropped_no_slot + report.dropped_late - report.gossip_lost
    );
    assert_accounting(&report);
}

/// Pusher's `fuzzBuzz` target: under one lock, every 3rd call fails and every 5th sleeps
/// 1 s while holding the lock, so the calls behind it queue up and hold their slots.
fn fuzz_buzz() -> impl Action {
    let lock = Rc::new(tokio::sync::Mutex::new(0u64));
    action_fn(move |_| {
        let lock = lock.clone();
        async move {
            let mut num = lock.lock().await;
            *num += 1;
            if *num % 3 == 0 {
                return Err("unexpected");
            }
            if *num % 5 == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
    })
}

/// Pusher's case: rate 100, cap 5, every 5th call sleeps 1 s under the target's lock: more
/// than 400 canceled ticks in 5 s.
#[tokio::test]
async fn slow_calls_fill_the_gate_and_ticks_are_canceled() {
    let tally = Arc::new(Tally::default());
    let worker = Worker::builder()
        .action(fuzz_buzz())
        .overtime(5)
        .gossips(listeners(&tally))
        .build();
    let report = work_for(&worker, Duration::from_secs(5), rate(100.0)).await;
    let (before, after, failed, canceled) = tally.get();
    assert!(canceled > 400, "canceled {canceled}, {report:?}");
    assert!(failed > 0, "every third call fails");
    assert!(
        before >= after + failed,
        "before {before} after {after} failed {failed}"
    );
    assert_accounting(&report);
    assert_eq!(
        tally.stops_after_listen.load(Ordering::SeqCst),
        1,
        "stop runs after listen"
    );
}

#[tokio::test]
async fn work_waits_for_in_flight_calls_with_a_graceful_stop() {
    let stop = tokio_util::sync::CancellationToken::new();
    let abort = tokio_util::sync::CancellationToken::new();
    let ctx = WorkCtx {
        stop: stop.clone(),
        abort: Some(abort),
        deadline: None,
    };
    let worker = Worker::builder()
        .action(action_fn(|_| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<(), &str>(())
        }))
        .build();
    let started = Instant::now();
    let plan = rate(20.0);
    let (report, _) = tokio::join!(worker.work(&ctx, &plan), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    let report = report.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert!(report.completed >= 2, "{report:?}");
    assert_eq!(report.interrupted, 0, "{report:?}");
    assert_accounting(&report);
}

#[tokio::test]
async fn the_hard_stop_interrupts_in_flight_calls() {
    let worker = Worker::builder()
        .action(action_fn(|_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<(), &str>(())
        }))
        .build();
    let started = Instant::now();
    let report = work_for(&worker, Duration::from_millis(300), rate(50.0)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.completed, 0);
    assert!(report.interrupted >= 5, "{report:?}");
    assert_accounting(&report);
}

/// A generator that cannot wake on time drops the ticks it missed instead of bursting.
#[tokio::test]
async fn late_ticks_are_dropped_not_burst() {
    let calls = Rc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let worker = Worker::builder()
        .action(action_fn(move |_| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                // Block the whole thread: the tick loop cannot run for 200 ms.
                std::thread::sleep(Duration::from_millis(200));
            }
            std::future::ready(Ok::<(), &str>(()))
        }))
        .build();
    let report = work_for(&worker, Duration::from_millis(600), rate(1000.0)).await;
    assert!(report.dropped_late >= 150, "{report:?}");
    assert!(
        report.sent <= 450,
        "a late loop must not catch up: {report:?}"
    );
    assert_accounting(&report);
}

#[tokio::test]
async fn a_ramp_ends_by_itself_after_its_integral() {
    let worker = Worker::builder().action(noop()).build();
    let plan: Plan = Schedule::RampingRate {
        start_rate: 0.0,
        stages: vec![
            Stage {
                duration: Duration::from_millis(500),
                target: 400.0,
            },
            Stage {
                duration: Duration::from_millis(250),
                target: 400.0,
            },
        ],
    }
    .into();
    let report = worker.work(&WorkCtx::default(), &plan).await.unwrap();
    assert_eq!(
        report.scheduled, 200,
        "100 on the ramp and 100 on the plateau: {report:?}"
    );
    assert_eq!(report.completed + report.dropped_late, 200);
    assert_accounting(&report);
}

#[tokio::test]
async fn closed_model_runs_exactly_the_iterations() {
    let in_flight = Rc::new(AtomicU64::new(0));
    let peak = Rc::new(AtomicU64::new(0));
    let (now, max) = (in_flight.clone(), peak.clone());
    let worker = Worker::builder()
        .action(action_fn(move |_| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), &str>(())
            }
        }))
        .build();
    let plan: Plan = Schedule::ConstantVus {
        vus: 4,
        iterations: Some(101),
    }
    .into();
    let report = worker.work(&WorkCtx::default(), &plan).await.unwrap();
    assert_eq!(report.completed, 101);
    assert_eq!(peak.load(Ordering::SeqCst), 4, "four virtual users at once");
    assert_accounting(&report);
}

#[tokio::test]
async fn closed_model_with_an_instant_action_still_stops() {
    let worker = Worker::builder().action(noop()).build();
    let plan: Plan = Schedule::ConstantVus {
        vus: 2,
        iterations: None,
    }
    .into();
    let report = work_for(&worker, Duration::from_millis(100), plan).await;
    assert!(report.completed > 100, "{report:?}");
}

#[tokio::test]
async fn farm_cancels_all_on_the_first_error() {
    let good = Worker::builder().action(noop()).ident("good").build();
    let bad = Worker::builder()
        .action(noop())
        .ident("bad")
        .overtime(-5)
        .build();
    let started = Instant::now();
    let ctx = WorkCtx::for_duration(Duration::from_secs(10));
    let err = farm(&[good, bad], &ctx, &rate(100.0)).await.unwrap_err();
    assert!(matches!(err, WorkError::InvalidOvertime), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the good worker was cancelled too"
    );
    assert!(
        !ctx.stop.is_cancelled(),
        "the caller's context is not cancelled by the farm"
    );
}

#[tokio::test]
async fn force_shares_listeners_between_its_workers() {
    let tally = Arc::new(Tally::default());
    let hire = Worker::builder().action(noop()).gossips(listeners(&tally));
    let ctx = WorkCtx::for_duration(Duration::from_millis(300));
    let reports = force(3, &hire, &ctx, &rate(100.0)).await.unwrap();
    assert_eq!(reports.len(), 3);
    let mut names = tally.workers.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["force #0", "force #1", "force #2"]);
    assert_eq!(tally.stops_after_listen.load(Ordering::SeqCst), 3);
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    let (before, after, _, _) = tally.get();
    assert_eq!(
        after, completed,
        "after gossip is lossless until the hard stop"
    );
    assert!(before >= after);
}

/// A custom action reports its own send time: the wait before it shows as lag.
struct WaitsThenSends;

impl Action for WaitsThenSends {
    async fn call(&self, _: CallCtx) -> Completion {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Completion {
            sent: Instant::now(),
            outcome: Ok(()),
        }
    }
}

#[tokio::test]
async fn samples_carry_the_action_send_time() {
    use stampede_core::{DropReason, Sample, Sink};
    #[derive(Default)]
    struct Lags(std::cell::RefCell<Vec<Duration>>);
    impl Sink for Lags {
        fn record(&self, sample: &Sample) {
            self.0.borrow_mut().push(sample.lag());
        }
        fn dropped(&self, _: Instant, _: DropReason) {}
    }
    let lags = Rc::new(Lags::default());
    let worker = Worker::builder()
        .action(WaitsThenSends)
        .sink(lags.clone())
        .build();
    work_for(&worker, Duration::from_millis(200), rate(50.0)).await;
    let lags = lags.0.borrow();
    assert!(!lags.is_empty());
    assert!(
        lags.iter().all(|lag| *lag >= Duration::from_millis(20)),
        "{lags:?}"
    );
}

#[tokio::test]
async fn a_panicking_action_frees_its_slot_and_keeps_the_accounting() {
    // The default hook prints (and, under RUST_BACKTRACE, symbolizes) every panic, which can
    // stall the thread long enough for the ticks to be dropped as late; this test is about
    // the accounting, so the panics are silenced while it runs.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let calls = Rc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let worker = Worker::builder()
        .action(action_fn(move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n.is_multiple_of(2), "every second call panics");
                Ok::<(), &str>(())
            }
        }))
        .overtime(1)
        .build();
    let report = work_for(&worker, Duration::from_millis(500), rate(100.0)).await;
    std::panic::set_hook(default_hook);
    assert!(
        report.interrupted >= 5,
        "the panicked calls count as interrupted: {report:?}"
    );
    assert!(
        report.completed >= 5,
        "the slot was released each time: {report:?}"
    );
    assert_accounting(&report);
}
