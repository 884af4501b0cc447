//! The harness's behaviour, after coder's own scaletest tests: strategies (order,
//! concurrency limits, timeouts, shuffles), runs (panics, logs, cancellation, cleanup),
//! the barrier with runners that leave early, the dispatcher, and the report layouts.

mod barrier;
mod build_stream;
mod dispatcher;
mod harness;
mod layouts;
mod strategies;

use std::time::Duration;

/// Fails a test that would otherwise hang. `limit` is what the test expects; at least 10 s
/// are allowed, since a loaded CI host (printing the backtraces of deliberate panics, say)
/// can stall for seconds, and this catches deadlocks, not slowness.
async fn within<F: Future>(limit: Duration, fut: F) -> F::Output {
    let limit = limit.max(Duration::from_secs(10));
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("still going after {limit:?}: deadlock?"),
    }
}
