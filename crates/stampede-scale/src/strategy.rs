//! How the harness runs its runs: coder's execution strategies. A closed set, so an enum:
//! [`Strategy::Linear`] one after the other, [`Strategy::Concurrent`] all at once,
//! [`Strategy::Parallel`] at most `limit` at once, and two wrappers, [`Strategy::Timeout`]
//! (a deadline for every run) and [`Strategy::Shuffle`] (a random order, from a seed when
//! the order must be reproducible).
//!
//! Every function is always called, whatever the others do; the errors come back as a
//! list, each wrapped as `run <i>: <error>` with `i` the position in the (shuffled) list.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ctx::Ctx;
use crate::run::RunFailure;

/// One function a strategy runs: a run, or a run's cleanup.
pub type TestFn = Box<dyn FnOnce(Ctx) -> BoxFuture<'static, Result<(), RunFailure>> + Send>;

/// How a list of [`TestFn`]s is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// One after the other, in order.
    Linear,
    /// All at once, one task each.
    Concurrent,
    /// All at once, but at most `limit` running at any instant.
    Parallel {
        /// The most functions running together.
        limit: NonZeroUsize,
    },
    /// `inner`, with every function given a context that ends `timeout` after it starts.
    Timeout {
        /// Each function's own deadline, counted from its start.
        timeout: Duration,
        /// The strategy that runs the functions.
        inner: Box<Strategy>,
    },
    /// `inner`, on the functions in a random order (Fisher–Yates).
    Shuffle {
        /// The seed of the order; `None` draws one from the operating system.
        seed: Option<u64>,
        /// The strategy that runs the functions.
        inner: Box<Strategy>,
    },
}

impl Strategy {
    /// Coder's `--*-concurrency` flags: 1 runs linearly, 0 runs everything at once, any
    /// other number is a parallel limit.
    pub fn from_concurrency(concurrency: usize) -> Strategy {
        match NonZeroUsize::new(concurrency) {
            None => Strategy::Concurrent,
            Some(n) if n.get() == 1 => Strategy::Linear,
            Some(limit) => Strategy::Parallel { limit },
        }
    }

    /// This strategy, with a deadline of `timeout` for each function.
    pub fn with_timeout(self, timeout: Duration) -> Strategy {
        Strategy::Timeout {
            timeout,
            inner: Box::new(self),
        }
    }

    /// This strategy, on the functions shuffled by `seed` (or a random seed).
    pub fn shuffled(self, seed: Option<u64>) -> Strategy {
        Strategy::Shuffle {
            seed,
            inner: Box::new(self),
        }
    }

    /// Calls every function and returns the errors of those that failed.
    pub async fn run(&self, ctx: &Ctx, mut fns: Vec<TestFn>) -> Vec<FnError> {
        let mut strategy = self;
        loop {
            match strategy {
                Strategy::Timeout { timeout, inner } => {
                    let timeout = *timeout;
                    fns = fns
                        .into_iter()
                        .map(|f| -> TestFn {
                            Box::new(move |ctx: Ctx| f(ctx.with_timeout(timeout)))
                        })
                        .collect();
                    strategy = inner;
                }
                Strategy::Shuffle { seed, inner } => {
                    shuffle(&mut fns, seed.unwrap_or_else(random_seed));
                    strategy = inner;
                }
                Strategy::Linear => return linear(ctx, fns).await,
                Strategy::Concurrent => return spawned(ctx, fns, None).await,
                Strategy::Parallel { limit } => {
                    let permits = Arc::new(Semaphore::new(limit.get()));
                    return spawned(ctx, fns, Some(permits)).await;
                }
            }
        }
    }
}

/// A function's failure and its position in the list the strategy ran.
#[derive(Debug, Clone)]
pub struct FnError {
    /// The function's position in the list as run (after any shuffle).
    pub index: usize,
    /// Why it failed.
    pub failure: RunFailure,
}

impl fmt::Display for FnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}: {}", self.index, self.failure)
    }
}

impl std::error::Error for FnError {}

async fn linear(ctx: &Ctx, fns: Vec<TestFn>) -> Vec<FnError> {
    let mut errors = Vec::new();
    for (index, f) in fns.into_iter().enumerate() {
        if let Err(failure) = f(ctx.clone()).await {
            errors.push(FnError { index, failure });
        }
    }
    errors
}

/// One task per function; with `permits`, a task waits for a permit before it calls its
/// function, like coder's semaphore channel. Dropping this future aborts the tasks.
async fn spawned(ctx: &Ctx, fns: Vec<TestFn>, permits: Option<Arc<Semaphore>>) -> Vec<FnError> {
    let mut tasks = JoinSet::new();
    for (index, f) in fns.into_iter().enumerate() {
        let (ctx, permits) = (ctx.clone(), permits.clone());
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = match &permits {
                Some(p) => p.acquire().await.ok(),
                None => None,
            };
            (index, f(ctx).await)
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((index, Err(failure))) => errors.push(FnError { index, failure }),
            // Runs catch their own panics; this is a panic in the harness's own wrapper.
            Err(e) => errors.push(FnError {
                index: usize::MAX,
                failure: RunFailure::Panic(e.to_string()),
            }),
        }
    }
    errors.sort_by_key(|e| e.index);
    errors
}

/// Fisher–Yates as coder does it: for each `i`, swap with a `j` drawn from `0..=i`.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in 1..items.len() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_nanos() as u64)
    })
}

/// A small, seedable generator; the order of runs needs no cryptographic quality.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for our `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_flags_map_like_coders() {
        let check = |n, expected: Strategy| assert_eq!(Strategy::from_concurrency(n), expected);
        check(0, Strategy::Concurrent);
        check(1, Strategy::Linear);
        check(
            4,
            Strategy::Parallel {
                limit: NonZeroUsize::new(4).unwrap(),
            },
        );
    }

    #[test]
    fn shuffle_is_a_permutation_fixed_by_its_seed() {
        let order = |seed| {
            let mut v: Vec<u32> = (0..20).collect();
            shuffle(&mut v, seed);
            v
        };
        let a = order(42);
        assert_eq!(a, order(42));
        assert_ne!(a, order(43));
        assert_ne!(a, (0..20).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64(7);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn errors_read_run_i() {
        let e = FnError {
            index: 3,
            failure: RunFailure::message("boom"),
        };
        assert_eq!(e.to_string(), "run 3: boom");
    }
}
