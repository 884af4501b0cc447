//! What Go's `context.Context` does for coder's harness: a cancellation signal plus an
//! optional deadline, handed down from the harness to each run and narrowed on the way
//! (the timeout strategy gives every run its own deadline).
//!
//! A [`Ctx`] is cheap to clone. It never spawns a timer: [`Ctx::done`] races the
//! cancellation token against a sleep until the deadline, so a paused tokio clock works.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a [`Ctx`] is done; the texts are Go's `context.Canceled` and
/// `context.DeadlineExceeded`, as coder's runs report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The token was cancelled.
    Canceled,
    /// The deadline passed.
    DeadlineExceeded,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stopped::Canceled => "context canceled",
            Stopped::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Stopped {}

/// A cancellation token and an optional deadline.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    token: CancellationToken,
    deadline: Option<Instant>,
}

impl Ctx {
    /// A context that is done when `token` is cancelled, with no deadline.
    pub fn new(token: CancellationToken) -> Self {
        Ctx {
            token,
            deadline: None,
        }
    }

    /// A child context: done when this one is, or `timeout` from now, whichever is first.
    /// Cancelling the child's token does not cancel the parent.
    pub fn with_timeout(&self, timeout: Duration) -> Ctx {
        let own = Instant::now().checked_add(timeout);
        let deadline = match (self.deadline, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ctx {
            token: self.token.child_token(),
            deadline,
        }
    }

    /// A child context with a token of its own, for cancelling one branch only.
    pub fn child(&self) -> Ctx {
        Ctx {
            token: self.token.child_token(),
            deadline: self.deadline,
        }
    }

    /// The token; cancel it to stop everything running under this context.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// When this context's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether, and why, the context is already done.
    pub fn stopped(&self) -> Option<Stopped> {
        if self.token.is_cancelled() {
            Some(Stopped::Canceled)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Stopped::DeadlineExceeded)
        } else {
            None
        }
    }

    /// Resolves when the context is done, with the reason.
    pub async fn done(&self) -> Stopped {
        match self.deadline {
            Some(deadline) => tokio::select! {
                biased;
                () = self.token.cancelled() => Stopped::Canceled,
                () = tokio::time::sleep_until(deadline) => Stopped::DeadlineExceeded,
            },
            None => {
                self.token.cancelled().await;
                Stopped::Canceled
            }
        }
    }

    /// Runs `fut` unless the context is done first.
    pub async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Stopped> {
        tokio::select! {
            biased;
            out = fut => Ok(out),
            why = self.done() => Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_deadline_never_outlives_its_parent() {
        let parent = Ctx::default().with_timeout(Duration::from_millis(10));
        let child = parent.with_timeout(Duration::from_secs(60));
        assert_eq!(child.deadline(), parent.deadline());
        assert_eq!(child.done().await, Stopped::DeadlineExceeded);
        assert_eq!(child.stopped(), Some(Stopped::DeadlineExceeded));
    }

    #[tokio::test]
    async fn cancelling_the_parent_stops_the_child_but_not_the_reverse() {
        let parent = Ctx::default();
        let child = parent.child();
        child.token().cancel();
        assert_eq!(parent.stopped(), None);
        let child2 = parent.with_timeout(Duration::from_secs(60));
        parent.token().cancel();
        assert_eq!(child2.done().await, Stopped::Canceled);
    }

    #[tokio::test]
    async fn run_returns_the_output_or_why_it_stopped() {
        let ctx = Ctx::default();
        assert_eq!(ctx.run(async { 7 }).await, Ok(7));
        let short = ctx.with_timeout(Duration::from_millis(5));
        let never = std::future::pending::<()>();
        assert_eq!(short.run(never).await, Err(Stopped::DeadlineExceeded));
    }

    #[test]
    fn texts_are_gos() {
        assert_eq!(Stopped::Canceled.to_string(), "context canceled");
        assert_eq!(
            Stopped::DeadlineExceeded.to_string(),
            "context deadline exceeded"
        );
    }
}
