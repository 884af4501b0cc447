//! The action: the function a worker calls (pusher's `Target`, renamed to keep "target" for
//! ConTest's unit under test).

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use stampede_core::{Failure, Outcome};
use tokio_util::sync::CancellationToken;

/// What an action gets for one call.
#[derive(Debug, Clone)]
pub struct CallCtx {
    /// When the schedule meant this call to start. Latency is measured from here.
    pub intended: Instant,
    /// Cancelled when in-flight calls must end (the hard stop). The engine also drops the
    /// call's future then, so most actions never need to look at it.
    pub abort: CancellationToken,
}

/// How one call ended, as the action reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// When the request actually went out: after any wait for a free connection.
    pub sent: Instant,
    /// Success, or the failure kind.
    pub outcome: Outcome,
}

/// Something a worker calls. Calls run as local tasks on the worker's thread, so neither the
/// action nor its futures need to be `Send`; per-thread state (connections) can live in it.
pub trait Action: 'static {
    /// Make one call. The engine measures the end; the action reports when it sent.
    fn call(&self, ctx: CallCtx) -> impl Future<Output = Completion>;
}

/// An [`Action`] made from an async closure; see [`action_fn`].
#[derive(Debug, Clone)]
pub struct FnAction<F>(F);

/// Turns an async closure returning `Result<T, E>` into an [`Action`]: the call counts as
/// sent when the closure is called, and an `Err` is a failure of kind
/// [`Failure::Other`].
pub fn action_fn<F, Fut, T, E>(f: F) -> FnAction<F>
where
    F: Fn(CallCtx) -> Fut + 'static,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    FnAction(f)
}

impl<F, Fut, T, E> Action for FnAction<F>
where
    F: Fn(CallCtx) -> Fut + 'static,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    async fn call(&self, ctx: CallCtx) -> Completion {
        let sent = Instant::now();
        let outcome = match (self.0)(ctx).await {
            Ok(_) => Ok(()),
            Err(_) => Err(Failure::Other),
        };
        Completion { sent, outcome }
    }
}
