//! The [`Harness`]: coder's `TestHarness`. Runs are registered under `<test name>/<id>`,
//! run once with the run [`Strategy`], collected into [`Results`], then cleaned up with
//! the cleanup strategy. Misuse (a duplicate id, a second `run`, results before the end)
//! is an error to match, never a panic.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::ctx::Ctx;
use crate::results::Results;
use crate::run::{Cleanable, LogTee, Runnable, TestRun};
use crate::strategy::{FnError, Strategy, TestFn};

/// Misuse of a [`Harness`], or failed cleanups.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A run with this full id is already registered.
    #[error("cannot add test with duplicate full ID: {0}")]
    DuplicateRun(String),
    /// Runs can only be added before `run`.
    #[error("cannot add a run after the harness has started")]
    AlreadyStarted,
    /// `run` was called a second time.
    #[error("harness is already started: a harness runs once")]
    RunTwice,
    /// Results and cleanup need `run` to have finished.
    #[error("harness has not finished: call run first and let it end")]
    NotFinished,
    /// Some cleanups failed; each error names its run by position.
    #[error("{} cleanup(s) failed: {}", .0.len(), join(.0))]
    Cleanup(Vec<FnError>),
}

fn join(errors: &[FnError]) -> String {
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Running,
    Finished,
}

/// Registered runs and the two strategies that run and clean them up.
pub struct Harness {
    run_strategy: Strategy,
    cleanup_strategy: Strategy,
    ids: HashSet<String>,
    runs: Vec<Arc<TestRun>>,
    state: State,
    elapsed: Duration,
    log_tee: Option<LogTee>,
}

impl Harness {
    /// An empty harness.
    pub fn new(run_strategy: Strategy, cleanup_strategy: Strategy) -> Self {
        Harness {
            run_strategy,
            cleanup_strategy,
            ids: HashSet::new(),
            runs: Vec::new(),
            state: State::Ready,
            elapsed: Duration::ZERO,
            log_tee: None,
        }
    }

    /// Copies every run's log, as it is written, to `writer` as well (coder's
    /// `WithLogWriter`); the per-run logs in the results are kept either way.
    pub fn with_log_writer(mut self, writer: impl io::Write + Send + 'static) -> Self {
        let tee: LogTee = Arc::new(Mutex::new(writer));
        for run in &self.runs {
            run.set_log_tee(Some(tee.clone()));
        }
        self.log_tee = Some(tee);
        self
    }

    /// Registers `runnable` as the run `<test_name>/<id>`.
    pub fn add_run(
        &mut self,
        test_name: &str,
        id: &str,
        runnable: impl Runnable,
    ) -> Result<(), HarnessError> {
        self.register(TestRun::new(test_name, id, runnable))
    }

    /// Registers `cleanable` as the run `<test_name>/<id>`; [`Harness::cleanup`] will call
    /// its cleanup if the run started.
    pub fn add_cleanable_run(
        &mut self,
        test_name: &str,
        id: &str,
        cleanable: impl Cleanable,
    ) -> Result<(), HarnessError> {
        self.register(TestRun::cleanable(test_name, id, cleanable))
    }

    fn register(&mut self, run: TestRun) -> Result<(), HarnessError> {
        if self.state != State::Ready {
            return Err(HarnessError::AlreadyStarted);
        }
        let full_id = run.full_id();
        if !self.ids.insert(full_id.clone()) {
            return Err(HarnessError::DuplicateRun(full_id));
        }
        run.set_log_tee(self.log_tee.clone());
        self.runs.push(Arc::new(run));
        Ok(())
    }

    /// How many runs are registered.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no run is registered.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Runs every registered run with the run strategy; blocks until all have ended.
    /// Per-run errors are recorded in the [`Results`], not returned.
    ///
    /// Cancel `ctx` to stop the runs: each fails with `context canceled`. Dropping this
    /// future instead aborts the runs still going (recorded as aborted); the harness then
    /// counts as finished, so results and cleanup stay available.
    pub async fn run(&mut self, ctx: &Ctx) -> Result<(), HarnessError> {
        if self.state != State::Ready {
            return Err(HarnessError::RunTwice);
        }
        self.state = State::Running;
        let fns = self.fns(TestRun::run);
        let strategy = self.run_strategy.clone();
        let finish = Finish {
            harness: self,
            start: Instant::now(),
        };
        // Run failures are already recorded by each TestRun.
        strategy.run(ctx, fns).await;
        drop(finish);
        Ok(())
    }

    fn fns<F, Fut>(&self, f: F) -> Vec<TestFn>
    where
        F: Fn(Arc<TestRun>, Ctx) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = Result<(), crate::RunFailure>> + Send + 'static,
    {
        self.runs
            .iter()
            .map(|run| -> TestFn {
                let run = run.clone();
                Box::new(move |ctx| Box::pin(f(run, ctx)))
            })
            .collect()
    }

    /// The results of a finished run.
    pub fn results(&self) -> Result<Results, HarnessError> {
        if self.state != State::Finished {
            return Err(HarnessError::NotFinished);
        }
        let mut results = Results {
            total_runs: self.runs.len(),
            elapsed: self.elapsed,
            ..Results::default()
        };
        for run in &self.runs {
            let result = run.result();
            if result.error.is_none() {
                results.total_pass += 1;
            } else {
                results.total_fail += 1;
            }
            results.runs.insert(result.full_id.clone(), result);
        }
        Ok(results)
    }

    /// Cleans up every run that started and is [`Cleanable`], with the cleanup strategy.
    ///
    /// Cancel `ctx` (or let its deadline pass) to abandon the cleanups: those running
    /// stop, those whose turn comes later are not started, and each fails with the
    /// context's reason.
    pub async fn cleanup(&self, ctx: &Ctx) -> Result<(), HarnessError> {
        if self.state != State::Finished {
            return Err(HarnessError::NotFinished);
        }
        let errors = self
            .cleanup_strategy
            .run(ctx, self.fns(TestRun::cleanup))
            .await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Cleanup(errors))
        }
    }
}

/// Marks the harness finished and records the elapsed time, also if `run` is dropped.
struct Finish<'a> {
    harness: &'a mut Harness,
    start: Instant,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.harness.elapsed = self.start.elapsed();
        self.harness.state = State::Finished;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, run_fn};

    fn ok() -> impl Runnable {
        run_fn(|_| async { Ok::<(), BoxError>(()) })
    }

    #[tokio::test]
    async fn misuse_is_an_error_not_a_panic() {
        let mut h = Harness::new(Strategy::Linear, Strategy::Linear);
        h.add_run("t", "0", ok()).unwrap();
        assert!(matches!(
            h.add_run("t", "0", ok()),
            Err(HarnessError::DuplicateRun(id)) if id == "t/0"
        ));
        h.add_run("u", "0", ok()).unwrap();
        assert!(matches!(h.results(), Err(HarnessError::NotFinished)));
        assert!(matches!(
            h.cleanup(&Ctx::default()).await,
            Err(HarnessError::NotFinished)
        ));
        h.run(&Ctx::default()).await.unwrap();
        assert!(matches!(
            h.run(&Ctx::default()).await,
            Err(HarnessError::RunTwice)
        ));
        assert!(matches!(
            h.add_run("v", "0", ok()),
            Err(HarnessError::AlreadyStarted)
        ));
        let results = h.results().unwrap();
        assert_eq!((results.total_runs, results.total_pass), (2, 2));
    }

    #[tokio::test]
    async fn a_dropped_run_leaves_a_finished_harness() {
        let mut h = Harness::new(Strategy::Linear, Strategy::Linear);
        h.add_run(
            "t",
            "0",
            run_fn(|_| std::future::pending::<Result<(), BoxError>>()),
        )
        .unwrap();
        h.add_run("t", "1", ok()).unwrap();
        let ctx = Ctx::default();
        let going = tokio::time::timeout(Duration::from_millis(20), h.run(&ctx)).await;
        assert!(going.is_err());
        let results = h.results().unwrap();
        assert_eq!(results.total_fail, 2);
        let error = |id: &str| results.runs[id].error.as_ref().unwrap().to_string();
        assert_eq!(error("t/0"), "run aborted: the harness was dropped");
        assert_eq!(error("t/1"), "run did not start");
    }
}
