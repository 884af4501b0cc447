//! Runs inside a harness: what is recorded, how panics, timeouts and cancellation end a
//! run, and which runs are cleaned up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use stampede_scale::{
    BoxError, Cleanable, Ctx, Harness, HarnessError, RunCtx, RunFailure, Runnable, Stopped,
    Strategy, run_fn,
};

use crate::within;

/// What a test run does.
#[derive(Clone, Copy)]
enum Act {
    Pass,
    Fail,
    Panic,
    /// Ignores its context and never ends by itself.
    Hang,
}

async fn act(ctx: &RunCtx, act: Act) -> Result<(), BoxError> {
    ctx.log(format_args!("{} starting", ctx.full_id()));
    match act {
        Act::Pass => Ok(()),
        Act::Fail => Err(format!("{} failed", ctx.id()).into()),
        Act::Panic => panic!("kaboom in {}", ctx.id()),
        Act::Hang => std::future::pending().await,
    }
}

/// The error text of each run, `None` for a pass.
fn errors(h: &Harness) -> BTreeMap<String, Option<String>> {
    let results = h.results().unwrap();
    results
        .runs
        .into_iter()
        .map(|(id, run)| (id, run.error.map(|e| e.to_string())))
        .collect()
}

fn harness_of(strategy: Strategy, acts: &[Act]) -> Harness {
    let mut h = Harness::new(strategy, Strategy::Linear);
    for (i, a) in acts.iter().enumerate() {
        let a = *a;
        h.add_run(
            "t",
            &i.to_string(),
            run_fn(move |ctx: RunCtx| async move { act(&ctx, a).await }),
        )
        .unwrap();
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_becomes_that_runs_error_under_every_strategy() {
    for strategy in [
        Strategy::Linear,
        Strategy::Concurrent,
        Strategy::from_concurrency(2),
    ] {
        let mut h = harness_of(strategy.clone(), &[Act::Pass, Act::Panic, Act::Fail]);
        within(Duration::from_secs(2), h.run(&Ctx::default()))
            .await
            .unwrap();
        let expected = BTreeMap::from([
            ("t/0".to_owned(), None),
            ("t/1".to_owned(), Some("panic: kaboom in 1".to_owned())),
            ("t/2".to_owned(), Some("2 failed".to_owned())),
        ]);
        assert_eq!(errors(&h), expected, "{strategy:?}");
        let results = h.results().unwrap();
        assert_eq!(
            (results.total_runs, results.total_pass, results.total_fail),
            (3, 1, 2)
        );
        assert!(matches!(
            results.runs["t/1"].error,
            Some(RunFailure::Panic(_))
        ));
    }
}

#[tokio::test]
async fn logs_start_and_duration_are_recorded_per_run() {
    let mut h = Harness::new(Strategy::Linear, Strategy::Linear);
    let slow = run_fn(|ctx: RunCtx| async move {
        ctx.log("one");
        tokio::time::sleep(Duration::from_millis(40)).await;
        ctx.log("two");
        Ok::<(), BoxError>(())
    });
    h.add_run("slow", "a", slow).unwrap();
    let before = SystemTime::now();
    h.run(&Ctx::default()).await.unwrap();
    let results = h.results().unwrap();
    let run = &results.runs["slow/a"];
    assert_eq!((run.test_name.as_str(), run.id.as_str()), ("slow", "a"));
    assert_eq!(run.logs, "one\ntwo\n");
    assert!(run.started_at.unwrap() >= before);
    assert!(
        run.duration >= Duration::from_millis(40),
        "{:?}",
        run.duration
    );
    assert!(results.elapsed >= run.duration);
}

#[tokio::test]
async fn a_run_that_ignores_its_deadline_is_stopped_anyway() {
    let strategy = Strategy::Concurrent.with_timeout(Duration::from_millis(30));
    let mut h = harness_of(strategy, &[Act::Hang, Act::Pass]);
    within(Duration::from_secs(2), h.run(&Ctx::default()))
        .await
        .unwrap();
    let errors = errors(&h);
    assert_eq!(errors["t/0"].as_deref(), Some("context deadline exceeded"));
    assert_eq!(errors["t/1"], None);
}

#[tokio::test]
async fn cancelling_the_harness_context_stops_every_run() {
    let mut h = harness_of(Strategy::Concurrent, &[Act::Hang, Act::Hang, Act::Hang]);
    let ctx = Ctx::default();
    let cancel = ctx.token().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    });
    within(Duration::from_secs(2), h.run(&ctx)).await.unwrap();
    let results = h.results().unwrap();
    assert_eq!(results.total_fail, 3);
    for run in results.runs.values() {
        assert!(matches!(
            run.error,
            Some(RunFailure::Stopped(Stopped::Canceled))
        ));
    }
}

/// A run that records its cleanups; its cleanup fails when `fail_cleanup`.
struct Dirty {
    act: Act,
    fail_cleanup: bool,
    cleaned: Arc<Mutex<Vec<String>>>,
}

impl Runnable for Dirty {
    async fn run(&self, ctx: &RunCtx) -> Result<(), BoxError> {
        act(ctx, self.act).await
    }
}

impl Cleanable for Dirty {
    async fn cleanup(&self, ctx: &RunCtx) -> Result<(), BoxError> {
        self.cleaned.lock().unwrap().push(ctx.full_id());
        if self.fail_cleanup {
            return Err("delete failed".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn cleanup_covers_every_cleanable_run_that_ran_passed_or_not() {
    let cleaned = Arc::new(Mutex::new(Vec::new()));
    let dirty = |act, fail_cleanup| Dirty {
        act,
        fail_cleanup,
        cleaned: cleaned.clone(),
    };
    let mut h = Harness::new(Strategy::Concurrent, Strategy::Linear);
    h.add_cleanable_run("w", "0", dirty(Act::Pass, false))
        .unwrap();
    h.add_cleanable_run("w", "1", dirty(Act::Fail, false))
        .unwrap();
    h.add_cleanable_run("w", "2", dirty(Act::Panic, true))
        .unwrap();
    h.add_run("plain", "0", run_fn(|_| async { Ok::<(), BoxError>(()) }))
        .unwrap();
    h.run(&Ctx::default()).await.unwrap();

    let err = h.cleanup(&Ctx::default()).await.unwrap_err();
    let HarnessError::Cleanup(failures) = &err else {
        panic!("{err}")
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].to_string(), "run 2: delete failed");
    assert_eq!(err.to_string(), "1 cleanup(s) failed: run 2: delete failed");
    assert_eq!(*cleaned.lock().unwrap(), ["w/0", "w/1", "w/2"]);
}

#[tokio::test]
async fn cleanup_skips_runs_that_never_started() {
    let cleaned = Arc::new(Mutex::new(Vec::new()));
    let mut h = Harness::new(Strategy::Linear, Strategy::Linear);
    for (id, act) in [("0", Act::Pass), ("1", Act::Hang), ("2", Act::Pass)] {
        let run = Dirty {
            act,
            fail_cleanup: false,
            cleaned: cleaned.clone(),
        };
        h.add_cleanable_run("w", id, run).unwrap();
    }
    // Dropping the harness's run mid-way: w/1 is aborted, w/2 never starts.
    let _ = tokio::time::timeout(Duration::from_millis(30), h.run(&Ctx::default())).await;
    h.cleanup(&Ctx::default()).await.unwrap();
    assert_eq!(*cleaned.lock().unwrap(), ["w/0", "w/1"]);
    let results = h.results().unwrap();
    assert_eq!((results.total_pass, results.total_fail), (1, 2));
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_log_writer_gets_a_copy_of_every_runs_log() {
    let copy = Shared::default();
    let mut h = Harness::new(Strategy::Linear, Strategy::Linear);
    // Runs registered before and after the writer is set are both copied.
    h.add_run(
        "t",
        "0",
        run_fn(|ctx: RunCtx| async move { act(&ctx, Act::Pass).await }),
    )
    .unwrap();
    let mut h = h.with_log_writer(copy.clone());
    h.add_run(
        "t",
        "1",
        run_fn(|ctx: RunCtx| async move { act(&ctx, Act::Fail).await }),
    )
    .unwrap();
    h.run(&Ctx::default()).await.unwrap();
    let copied = String::from_utf8(copy.0.lock().unwrap().clone()).unwrap();
    assert_eq!(copied, "t/0 starting\nt/1 starting\n");
    assert_eq!(h.results().unwrap().runs["t/1"].logs, "t/1 starting\n");
}
