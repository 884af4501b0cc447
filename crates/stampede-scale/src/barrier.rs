//! A barrier for N runners that a runner leaving early can never deadlock: coder's
//! `harness.Barrier`, where waiting counts as arriving and leaving counts too.
//!
//! The barrier opens once `size` arrivals happened, an arrival being a [`Barrier::wait`]
//! (arrive, then block until open) or a [`Barrier::leave`] (arrive without blocking: a
//! runner that will never come). A [`Participant`] makes the leave automatic: each runner
//! holds one, and if the runner returns an error, panics or is cancelled before it waits,
//! dropping the participant leaves for it. Arrivals past `size` change nothing.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use stampede_scale::Barrier;
//! let barrier = Barrier::new(2);
//! let (a, b) = (barrier.participant(), barrier.participant());
//! drop(a); // this runner failed before the barrier
//! b.wait().await; // the other one still goes through
//! # }
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Opens when `size` runners have arrived or left.
#[derive(Debug, Clone)]
pub struct Barrier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    size: usize,
    remaining: Mutex<usize>,
    open: CancellationToken,
}

impl Barrier {
    /// A barrier for `size` runners; a barrier of size 0 is open from the start.
    pub fn new(size: usize) -> Self {
        let open = CancellationToken::new();
        if size == 0 {
            open.cancel();
        }
        Barrier {
            inner: Arc::new(Inner {
                size,
                remaining: Mutex::new(size),
                open,
            }),
        }
    }

    /// How many runners the barrier was made for.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// How many arrivals are still needed to open.
    pub fn remaining(&self) -> usize {
        *self
            .inner
            .remaining
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the barrier is open.
    pub fn is_open(&self) -> bool {
        self.inner.open.is_cancelled()
    }

    /// Arrives now and returns a future that resolves once the barrier is open. The arrival
    /// counts even if the future is dropped unpolled.
    pub fn wait(&self) -> Opened {
        self.arrive();
        Opened(Box::pin(self.inner.open.clone().cancelled_owned()))
    }

    /// Arrives without waiting: a runner that will not reach the barrier.
    pub fn leave(&self) {
        self.arrive();
    }

    /// One runner's place at the barrier: [`Participant::wait`] arrives; dropping it
    /// without waiting leaves.
    pub fn participant(&self) -> Participant {
        Participant {
            barrier: self.clone(),
            arrived: false,
        }
    }

    fn arrive(&self) {
        let mut remaining = self
            .inner
            .remaining
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *remaining == 0 {
            return;
        }
        *remaining -= 1;
        if *remaining == 0 {
            self.inner.open.cancel();
        }
    }
}

/// Resolves when the barrier is open; see [`Barrier::wait`].
#[must_use = "the arrival counted already; await this to wait for the others"]
pub struct Opened(std::pin::Pin<Box<WaitForCancellationFutureOwned>>);

impl Future for Opened {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// A runner's place at a [`Barrier`]; dropped without [`Participant::wait`], it leaves.
#[derive(Debug)]
pub struct Participant {
    barrier: Barrier,
    arrived: bool,
}

impl Participant {
    /// Arrives and waits for the others.
    pub fn wait(mut self) -> Opened {
        self.arrived = true;
        self.barrier.wait()
    }

    /// Leaves now, without waiting.
    pub fn leave(self) {}
}

impl Drop for Participant {
    fn drop(&mut self) {
        if !self.arrived {
            self.barrier.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn opens_when_all_arrived_or_left() {
        let barrier = Barrier::new(3);
        let first = barrier.wait();
        barrier.leave();
        assert_eq!(barrier.remaining(), 1);
        assert!(!barrier.is_open());
        let stuck = tokio::time::timeout(Duration::from_millis(10), first).await;
        assert!(stuck.is_err(), "opened with one arrival missing");
        barrier.participant().wait().await;
        assert!(barrier.is_open());
        barrier.wait().await; // arrivals past the size do nothing and do not block
        assert_eq!(barrier.remaining(), 0);
    }

    #[tokio::test]
    async fn a_dropped_participant_leaves_and_a_waiting_one_does_not_leave_twice() {
        let barrier = Barrier::new(3);
        let (a, b, c) = (
            barrier.participant(),
            barrier.participant(),
            barrier.participant(),
        );
        let waiting = a.wait(); // counted once, even though the future is not polled yet
        assert_eq!(barrier.remaining(), 2);
        drop(b);
        assert_eq!(barrier.remaining(), 1);
        c.leave();
        waiting.await;
    }

    #[tokio::test]
    async fn size_zero_is_open() {
        Barrier::new(0).wait().await;
    }
}
