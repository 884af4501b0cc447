//! One registered run: what the user implements ([`Runnable`], optionally [`Cleanable`]),
//! what it is given ([`RunCtx`]: its ids, its [`Ctx`] and its [`Logs`]) and how it can end
//! badly ([`RunFailure`]).
//!
//! The harness wraps every run the way coder's `TestRun.Run` does: a fresh in-memory log,
//! the start time, the duration and the error are recorded, and a panic inside the run is
//! caught and becomes that run's error (`panic: <message>`), never the process's. Unlike a
//! Go run, a run that ignores its context is still stopped when the context is done: the
//! run's future is dropped and the run fails with `context deadline exceeded` or
//! `context canceled`.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::ctx::{Ctx, Stopped};
use crate::results::RunResult;

/// The error a run returns: any error will do.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A test the harness can run, many times over under different ids.
///
/// `run` should honour `ctx.ctx()` (cancellation and deadline), return only when the
/// test is over, and write whatever helps debugging to `ctx.logs()`.
pub trait Runnable: Send + Sync + 'static {
    /// Runs the test once, for the run `ctx.id()`.
    fn run(&self, ctx: &RunCtx) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A [`Runnable`] that leaves something behind to clean up. The harness calls `cleanup`
/// only for runs that actually started, whether they passed or failed.
pub trait Cleanable: Runnable {
    /// Removes what the run `ctx.id()` created.
    fn cleanup(&self, ctx: &RunCtx) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A [`Runnable`] made of a closure; see [`run_fn`].
pub struct RunFn<F>(F);

/// Makes a [`Runnable`] of a closure that gets its own copy of the [`RunCtx`].
///
/// ```
/// use stampede_scale::{BoxError, RunCtx, run_fn};
/// let runnable = run_fn(|ctx: RunCtx| async move {
///     ctx.log(format_args!("hello from {}", ctx.id()));
///     Ok::<(), BoxError>(())
/// });
/// # let _ = runnable;
/// ```
pub fn run_fn<F, Fut>(f: F) -> RunFn<F>
where
    F: Fn(RunCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    RunFn(f)
}

impl<F, Fut> Runnable for RunFn<F>
where
    F: Fn(RunCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    fn run(&self, ctx: &RunCtx) -> impl Future<Output = Result<(), BoxError>> + Send {
        (self.0)(ctx.clone())
    }
}

/// What a run is given: its ids, its context and its log.
#[derive(Debug, Clone)]
pub struct RunCtx {
    ctx: Ctx,
    test_name: Arc<str>,
    id: Arc<str>,
    logs: Logs,
}

impl RunCtx {
    /// A context for calling a [`Runnable`] outside a harness, e.g. in its own tests.
    pub fn new(ctx: Ctx, test_name: &str, id: &str, logs: Logs) -> Self {
        RunCtx {
            ctx,
            test_name: test_name.into(),
            id: id.into(),
            logs,
        }
    }

    /// Cancellation and deadline of this run.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The run's id, the part after the slash of its full id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The test's name, the part before the slash.
    pub fn test_name(&self) -> &str {
        &self.test_name
    }

    /// `<test name>/<id>`.
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.test_name, self.id)
    }

    /// The run's log.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Appends one line to the run's log.
    pub fn log(&self, line: impl fmt::Display) {
        self.logs.line(line);
    }
}

/// Where every run's log is copied as it is written (coder's `WithLogWriter`), e.g. stderr.
pub type LogTee = Arc<Mutex<dyn io::Write + Send>>;

/// A run's log: an in-memory buffer shared by its clones, safe to write from many tasks,
/// optionally copied to a [`LogTee`].
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<LogsInner>>);

#[derive(Default)]
struct LogsInner {
    buf: Vec<u8>,
    tee: Option<LogTee>,
}

impl Logs {
    /// Appends `line` and a newline.
    pub fn line(&self, line: impl fmt::Display) {
        let mut text = line.to_string().into_bytes();
        text.push(b'\n');
        self.append(&text);
    }

    /// Everything written so far (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock().buf).into_owned()
    }

    pub(crate) fn set_tee(&self, tee: Option<LogTee>) {
        self.lock().tee = tee;
    }

    fn append(&self, data: &[u8]) {
        let tee = {
            let mut inner = self.lock();
            inner.buf.extend_from_slice(data);
            inner.tee.clone()
        };
        if let Some(tee) = tee {
            // A failing copy must not fail the run: the log itself is kept above.
            let mut out = tee.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = io::Write::write_all(&mut *out, data);
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogsInner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Logs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logs")
            .field("len", &self.lock().buf.len())
            .finish()
    }
}

impl io::Write for Logs {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a run (or its cleanup) failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunFailure {
    /// The run returned an error.
    Error(Arc<dyn Error + Send + Sync + 'static>),
    /// The run panicked; the panic's message.
    Panic(String),
    /// The run's context was done before the run ended.
    Stopped(Stopped),
    /// The harness was dropped while the run was going.
    Aborted,
    /// The run never started: the harness was dropped before its turn.
    NotStarted,
}

impl RunFailure {
    /// A failure with just a message, e.g. to build results by hand.
    pub fn message(text: impl Into<String>) -> Self {
        let error: BoxError = text.into().into();
        RunFailure::Error(error.into())
    }
}

impl From<BoxError> for RunFailure {
    fn from(error: BoxError) -> Self {
        RunFailure::Error(error.into())
    }
}

/// The error and its sources joined by `": "`, the way a wrapped Go error reads.
impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::Error(error) => {
                write!(f, "{error}")?;
                let mut source = error.source();
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            RunFailure::Panic(message) => write!(f, "panic: {message}"),
            RunFailure::Stopped(why) => write!(f, "{why}"),
            RunFailure::Aborted => f.write_str("run aborted: the harness was dropped"),
            RunFailure::NotStarted => f.write_str("run did not start"),
        }
    }
}

impl Error for RunFailure {}

/// [`Runnable`] and [`Cleanable`] with their futures boxed, so runs of different types
/// can sit in one list.
trait DynRunnable: Send + Sync {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> BoxFuture<'a, Result<(), BoxError>>;
    fn cleanup<'a>(&'a self, ctx: &'a RunCtx) -> Option<BoxFuture<'a, Result<(), BoxError>>>;
}

struct Plain<R>(R);

impl<R: Runnable> DynRunnable for Plain<R> {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(self.0.run(ctx))
    }

    fn cleanup<'a>(&'a self, _: &'a RunCtx) -> Option<BoxFuture<'a, Result<(), BoxError>>> {
        None
    }
}

struct WithCleanup<C>(C);

impl<C: Cleanable> DynRunnable for WithCleanup<C> {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(self.0.run(ctx))
    }

    fn cleanup<'a>(&'a self, ctx: &'a RunCtx) -> Option<BoxFuture<'a, Result<(), BoxError>>> {
        Some(Box::pin(self.0.cleanup(ctx)))
    }
}

/// What is known of a run once it started.
#[derive(Debug, Clone)]
struct Record {
    started_at: SystemTime,
    duration: Duration,
    failure: Option<RunFailure>,
    finished: bool,
}

/// A registered run and its record; coder's `TestRun`.
pub(crate) struct TestRun {
    test_name: Arc<str>,
    id: Arc<str>,
    runner: Box<dyn DynRunnable>,
    logs: Logs,
    record: Mutex<Option<Record>>,
}

impl TestRun {
    pub(crate) fn new(test_name: &str, id: &str, runnable: impl Runnable) -> Self {
        Self::boxed(test_name, id, Box::new(Plain(runnable)))
    }

    pub(crate) fn cleanable(test_name: &str, id: &str, cleanable: impl Cleanable) -> Self {
        Self::boxed(test_name, id, Box::new(WithCleanup(cleanable)))
    }

    fn boxed(test_name: &str, id: &str, runner: Box<dyn DynRunnable>) -> Self {
        TestRun {
            test_name: test_name.into(),
            id: id.into(),
            runner,
            logs: Logs::default(),
            record: Mutex::new(None),
        }
    }

    pub(crate) fn set_log_tee(&self, tee: Option<LogTee>) {
        self.logs.set_tee(tee);
    }

    pub(crate) fn full_id(&self) -> String {
        format!("{}/{}", self.test_name, self.id)
    }

    fn run_ctx(&self, ctx: Ctx) -> RunCtx {
        RunCtx {
            ctx,
            test_name: self.test_name.clone(),
            id: self.id.clone(),
            logs: self.logs.clone(),
        }
    }

    fn record(&self) -> MutexGuard<'_, Option<Record>> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the test once and records how it went; returns its failure, if any.
    pub(crate) async fn run(self: Arc<Self>, ctx: Ctx) -> Result<(), RunFailure> {
        let start = Instant::now();
        *self.record() = Some(Record {
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            failure: Some(RunFailure::Aborted),
            finished: false,
        });
        // If this future is dropped mid-run, the record keeps `Aborted` and gets a duration.
        let guard = DurationGuard { run: &self, start };
        let rctx = self.run_ctx(ctx.clone());
        let failure = guarded(&ctx, self.runner.run(&rctx)).await.err();
        if let Some(record) = self.record().as_mut() {
            record.duration = start.elapsed();
            record.failure = failure.clone();
            record.finished = true;
        }
        drop(guard);
        failure.map_or(Ok(()), Err)
    }

    /// Cleans up after the run, if it started and its runnable is [`Cleanable`]. A cleanup
    /// whose context is done before its turn comes is not started (it would send requests
    /// after the deadline that abandoned it) and fails with the context's reason.
    pub(crate) async fn cleanup(self: Arc<Self>, ctx: Ctx) -> Result<(), RunFailure> {
        if self.record().is_none() {
            return Ok(());
        }
        if let Some(why) = ctx.stopped() {
            return Err(RunFailure::Stopped(why));
        }
        let rctx = self.run_ctx(ctx.clone());
        match self.runner.cleanup(&rctx) {
            Some(cleanup) => guarded(&ctx, cleanup).await,
            None => Ok(()),
        }
    }

    pub(crate) fn result(&self) -> RunResult {
        let record = self.record().clone();
        let (started_at, duration, error) = match record {
            Some(r) => (Some(r.started_at), r.duration, r.failure),
            None => (None, Duration::ZERO, Some(RunFailure::NotStarted)),
        };
        RunResult {
            full_id: self.full_id(),
            test_name: self.test_name.to_string(),
            id: self.id.to_string(),
            logs: self.logs.contents(),
            error,
            started_at,
            duration,
        }
    }
}

/// Sets the duration of a run whose future was dropped before it finished.
struct DurationGuard<'a> {
    run: &'a TestRun,
    start: Instant,
}

impl Drop for DurationGuard<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.run.record().as_mut()
            && !record.finished
        {
            record.duration = self.start.elapsed();
        }
    }
}

/// Awaits `fut` with panics caught, unless `ctx` is done first.
async fn guarded<F>(ctx: &Ctx, fut: F) -> Result<(), RunFailure>
where
    F: Future<Output = Result<(), BoxError>>,
{
    let caught = AssertUnwindSafe(fut).catch_unwind();
    tokio::select! {
        biased;
        out = caught => match out {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.into()),
            Err(payload) => Err(RunFailure::Panic(panic_message(payload.as_ref()))),
        },
        why = ctx.done() => Err(RunFailure::Stopped(why)),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a value that is not a string)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("create user")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn failures_read_like_go_errors() {
        let check = |failure: RunFailure, expected: &str| assert_eq!(failure.to_string(), expected);
        let wrapped: BoxError = Box::new(Outer(std::io::Error::other("connection refused")));
        check(wrapped.into(), "create user: connection refused");
        check(RunFailure::message("boom"), "boom");
        check(RunFailure::Panic("oops".into()), "panic: oops");
        check(RunFailure::Stopped(Stopped::Canceled), "context canceled");
    }

    #[test]
    fn logs_are_shared_by_clones() {
        let logs = Logs::default();
        let mut writer = logs.clone();
        write!(writer, "a").unwrap();
        logs.line("b");
        assert_eq!(logs.contents(), "ab\n");
    }

    #[tokio::test]
    async fn a_cleanup_runs_only_for_a_started_run_and_a_live_context() {
        struct Dirty(Arc<Mutex<u32>>);
        impl Runnable for Dirty {
            async fn run(&self, _: &RunCtx) -> Result<(), BoxError> {
                Ok(())
            }
        }
        impl Cleanable for Dirty {
            async fn cleanup(&self, _: &RunCtx) -> Result<(), BoxError> {
                *self.0.lock().unwrap() += 1;
                Ok(())
            }
        }
        let cleaned = Arc::new(Mutex::new(0));
        let run = Arc::new(TestRun::cleanable("t", "0", Dirty(cleaned.clone())));
        run.clone().cleanup(Ctx::default()).await.unwrap();
        assert_eq!(*cleaned.lock().unwrap(), 0);
        let result = run.result();
        assert!(matches!(result.error, Some(RunFailure::NotStarted)));
        assert_eq!(result.started_at, None);

        run.clone().run(Ctx::default()).await.unwrap();
        let done = Ctx::default();
        done.token().cancel();
        let late = run.clone().cleanup(done).await.unwrap_err();
        assert!(matches!(late, RunFailure::Stopped(Stopped::Canceled)));
        assert_eq!(
            *cleaned.lock().unwrap(),
            0,
            "a done context starts no cleanup"
        );
        run.clone().cleanup(Ctx::default()).await.unwrap();
        assert_eq!(*cleaned.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_run_dropped_midway_is_recorded_as_aborted() {
        let run = Arc::new(TestRun::new(
            "t",
            "0",
            run_fn(|_| std::future::pending::<Result<(), BoxError>>()),
        ));
        let going =
            tokio::time::timeout(Duration::from_millis(20), run.clone().run(Ctx::default()));
        assert!(going.await.is_err());
        let result = run.result();
        assert!(matches!(result.error, Some(RunFailure::Aborted)));
        assert!(result.duration >= Duration::from_millis(20));
    }
}
