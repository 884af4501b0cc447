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

/// Fails a test that would otherwise hang.
async fn within<F: Future>(limit: Duration, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("still going after {limit:?}: deadlock?"),
    }
}
