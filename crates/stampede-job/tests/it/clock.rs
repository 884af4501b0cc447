//! The runner on a manual clock: run intervals, retry intervals and a pause inside an
//! interval, measured exactly in the clock's time and taking no real time.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use stampede_api::job::events;
use stampede_core::{Clock, ManualClock};
use stampede_job::runner::{self, JobControl, JobOutcome};

use crate::{events as read_events, job, local, memory};

const HOUR_US: i64 = 3_600_000_000;

/// 2026-12-07T00:00:00Z.
fn start() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

/// The times (µs) of the events named `name`, in order.
async fn times(store: &Arc<dyn stampede_store::EventStore>, id: u64, name: &str) -> Vec<i64> {
    read_events(store, id)
        .await
        .iter()
        .filter(|e| e.name == name)
        .map(|e| e.emitted_at_us)
        .collect()
}

async fn submit_and_run(
    store: &Arc<dyn stampede_store::EventStore>,
    clock: Arc<dyn Clock>,
    text: &str,
) -> (u64, JobOutcome) {
    let job = job(text);
    let id = runner::submit(store, clock.as_ref(), &job, text, "test", "local")
        .await
        .unwrap();
    let outcome = runner::run_job(
        store.clone(),
        clock,
        id,
        &job,
        None,
        &JobControl::default(),
        &(),
    )
    .await
    .unwrap();
    (id, outcome)
}

#[test]
fn an_hour_between_runs_takes_no_time_and_is_exactly_an_hour() {
    let text = "name: hourly\nruns: 3\nrun_interval: 1h\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n";
    let started = std::time::Instant::now();
    local(async {
        let store = memory().await;
        let clock = Arc::new(ManualClock::auto_advance(start()));
        let (id, outcome) = submit_and_run(&store, clock.clone(), text).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let t0 = stampede_core::micros(start());
        assert_eq!(
            times(&store, id, events::RUN_STARTED).await,
            [t0, t0 + HOUR_US, t0 + 2 * HOUR_US]
        );
        assert_eq!(clock.now_us(), t0 + 2 * HOUR_US);
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn retries_wait_their_interval_on_the_clock() {
    let text = "name: retried\ntests:\n  - name: t\n    retries: { count: 2, interval: 10m }\n    steps:\n      - name: fails\n        exec: { command: \"false\" }\n";
    local(async {
        let store = memory().await;
        let clock = Arc::new(ManualClock::auto_advance(start()));
        let (id, outcome) = submit_and_run(&store, clock, text).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let t0 = stampede_core::micros(start());
        let ten_minutes = HOUR_US / 6;
        assert_eq!(
            times(&store, id, events::TARGET_ACQUIRED).await,
            [t0, t0 + ten_minutes, t0 + 2 * ten_minutes],
            "three attempts, ten minutes apart"
        );
    });
}

#[test]
fn a_pause_in_the_run_interval_keeps_what_is_left_of_it() {
    let text = "name: interval\nruns: 2\nrun_interval: 2s\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n";
    local(async {
        let store = memory().await;
        let clock = Arc::new(ManualClock::new(start()));
        let job = job(text);
        let id = runner::submit(&store, clock.as_ref(), &job, text, "test", "local")
            .await
            .unwrap();
        let control = JobControl::default();
        let running = tokio::task::spawn_local({
            let (store, clock, job, control) =
                (store.clone(), clock.clone(), job.clone(), control.clone());
            async move {
                runner::run_job(store, clock, id, &job, None, &control, &())
                    .await
                    .unwrap()
            }
        });
        until_waiting(&clock).await;
        clock.advance(Duration::from_millis(1500));
        control.pause.cancel();
        let JobOutcome::Paused(payload) = running.await.unwrap() else {
            panic!("not paused")
        };
        let t0 = stampede_core::micros(start());
        assert_eq!(
            payload.start_at_us,
            Some(t0 + 2_000_000),
            "the absolute next start"
        );

        let resumed = tokio::task::spawn_local({
            let (store, clock, job) = (store.clone(), clock.clone(), job.clone());
            async move {
                runner::run_job(
                    store,
                    clock,
                    id,
                    &job,
                    Some(payload),
                    &JobControl::default(),
                    &(),
                )
                .await
                .unwrap()
            }
        });
        until_waiting(&clock).await;
        clock.advance(Duration::from_millis(500));
        assert_eq!(resumed.await.unwrap(), JobOutcome::Completed);
        assert_eq!(
            times(&store, id, events::RUN_STARTED).await,
            [t0, t0 + 2_000_000],
            "run 2 starts when what was left of the interval has passed"
        );
    });
}

/// Yields until something waits on `clock`.
async fn until_waiting(clock: &ManualClock) {
    for _ in 0..10_000 {
        if clock.waiting() > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("nothing waited on the clock");
}
