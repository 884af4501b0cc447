//! The barrier inside a harness: runners meet, and runners that leave early (error,
//! panic, timeout) never keep the others waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use stampede_scale::{Barrier, BoxError, Ctx, Harness, Participant, RunCtx, Runnable, Strategy};

use crate::within;

/// How a runner behaves before the barrier.
#[derive(Clone, Copy)]
enum Before {
    /// Sleeps this long, then waits at the barrier.
    Arrive(Duration),
    Fail,
    Panic,
    /// Is cancelled (its future dropped) before it reaches the barrier.
    Stall,
}

/// A runner holding its place at the barrier from registration on, so that a runner that
/// never runs still leaves when the harness drops it.
struct Runner {
    place: Mutex<Option<Participant>>,
    before: Before,
    /// When each runner arrived at, and went through, the barrier.
    arrivals: Arc<Mutex<Vec<Instant>>>,
    passes: Arc<Mutex<Vec<Instant>>>,
}

impl Runnable for Runner {
    async fn run(&self, ctx: &RunCtx) -> Result<(), BoxError> {
        let place = self.place.lock().unwrap().take().ok_or("ran twice")?;
        match self.before {
            Before::Arrive(pause) => tokio::time::sleep(pause).await,
            Before::Fail => return Err("create user: refused".into()),
            Before::Panic => panic!("runner {} gave up", ctx.id()),
            Before::Stall => {
                // Cancelled by its own, narrower deadline: the future holding its place is
                // dropped, which leaves the barrier.
                let narrow = ctx.ctx().with_timeout(Duration::from_millis(50));
                let holding = async move {
                    let _place = place;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                };
                narrow.run(holding).await?;
                return Err("slept for a minute".into());
            }
        }
        self.arrivals.lock().unwrap().push(Instant::now());
        place.wait().await;
        self.passes.lock().unwrap().push(Instant::now());
        ctx.log("through the barrier");
        Ok(())
    }
}

struct Herd {
    harness: Harness,
    barrier: Barrier,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    passes: Arc<Mutex<Vec<Instant>>>,
}

fn herd(strategy: Strategy, befores: &[Before]) -> Herd {
    let barrier = Barrier::new(befores.len());
    let (arrivals, passes) = (Arc::default(), Arc::default());
    let mut harness = Harness::new(strategy, Strategy::Linear);
    for (i, before) in befores.iter().enumerate() {
        let runner = Runner {
            place: Mutex::new(Some(barrier.participant())),
            before: *before,
            arrivals: Arc::clone(&arrivals),
            passes: Arc::clone(&passes),
        };
        harness.add_run("herd", &i.to_string(), runner).unwrap();
    }
    Herd {
        harness,
        barrier,
        arrivals,
        passes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_passes_before_the_last_arrival() {
    let ms = Duration::from_millis;
    let befores = [
        Before::Arrive(ms(0)),
        Before::Arrive(ms(30)),
        Before::Arrive(ms(60)),
    ];
    let mut herd = herd(Strategy::Concurrent, &befores);
    within(Duration::from_secs(2), herd.harness.run(&Ctx::default()))
        .await
        .unwrap();
    let results = herd.harness.results().unwrap();
    assert_eq!(results.total_pass, 3);
    let last_arrival = *herd.arrivals.lock().unwrap().iter().max().unwrap();
    let passes = herd.passes.lock().unwrap();
    assert_eq!(passes.len(), 3);
    assert!(
        passes.iter().all(|p| *p >= last_arrival),
        "a runner went through early"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_failing_panicking_or_cancelled_before_the_barrier_release_the_others() {
    let ms = Duration::from_millis;
    let befores = [
        Before::Fail,
        Before::Arrive(ms(0)),
        Before::Panic,
        Before::Arrive(ms(20)),
        Before::Stall,
    ];
    // Generous limits: the test is about who is released, not how fast, and a busy host
    // (a build beside it) must not fail it.
    let strategy = Strategy::Concurrent.with_timeout(Duration::from_secs(10));
    let mut herd = herd(strategy, &befores);
    within(Duration::from_secs(20), herd.harness.run(&Ctx::default()))
        .await
        .unwrap();
    let results = herd.harness.results().unwrap();
    let error = |id: &str| results.runs[id].error.as_ref().map(ToString::to_string);
    assert_eq!(error("herd/0").as_deref(), Some("create user: refused"));
    assert_eq!(error("herd/1"), None);
    assert_eq!(error("herd/2").as_deref(), Some("panic: runner 2 gave up"));
    assert_eq!(error("herd/3"), None);
    assert_eq!(
        error("herd/4").as_deref(),
        Some("context deadline exceeded")
    );
    assert_eq!(results.runs["herd/3"].logs, "through the barrier\n");
}

#[tokio::test]
async fn runners_that_never_start_leave_when_the_harness_goes() {
    // Linear: runner 0 waits at a barrier of 3 for runners 1 and 2, which never start.
    let mut herd = herd(Strategy::Linear, &[Before::Arrive(Duration::ZERO); 3]);
    let ctx = Ctx::default();
    let stuck = tokio::time::timeout(Duration::from_millis(30), herd.harness.run(&ctx));
    assert!(
        stuck.await.is_err(),
        "a linear herd cannot pass its barrier"
    );
    assert_eq!(herd.barrier.remaining(), 2);
    // Dropping the harness drops the runners that never ran, and their places leave.
    drop(herd.harness);
    assert!(herd.barrier.is_open());
}
