//! What keeps `POST /v1/login` cheap to refuse: a keyed rate limit with backoff on failures
//! (one per client address, one per user name) and the [`Gate`] in front of the password
//! hash, so that no number of logins can hold more than a few Argon2 buffers at once.
//!
//! The limiter is ours rather than `governor`'s: what it must do beyond a token bucket is
//! back off on *failed* attempts and forget quiet keys within a fixed memory bound, and it
//! runs on the server's [`Clock`](stampede_core::Clock) so tests can step time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How one limiter counts: a token bucket for every attempt, and a wait that doubles with
/// every failure beyond the free ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts allowed at once, from a quiet start.
    pub burst: u32,
    /// One more attempt is allowed every this long.
    pub every: Duration,
    /// Failures in a row allowed before waiting starts (then 1 s, 2 s, 4 s ...).
    pub free_failures: u32,
    /// The longest wait after failures; failures are also forgotten after this long
    /// without a new one.
    pub max_backoff: Duration,
}

/// The most keys a limiter remembers. Past it, quiet keys are forgotten; if none is quiet,
/// new keys are refused (a flood of new names or addresses cannot grow memory or push out
/// the keys that are backing off).
const MAX_KEYS: usize = 65_536;

/// Keys longer than this are cut: an attacker-chosen name must not cost memory, and two
/// names sharing a long prefix only share a stricter limit.
const MAX_KEY: usize = 128;

/// A keyed limiter: [`Rate`] per key.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: Rate,
    keys: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Attempts left in the bucket, as of `refilled_us`.
    tokens: f64,
    refilled_us: i64,
    /// Failures in a row.
    failures: u32,
    last_failure_us: i64,
    /// No attempt before this.
    blocked_until_us: i64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The time until `until_us`, rounded up to whole seconds (what `Retry-After` says).
fn wait_from(now_us: i64, until_us: i64) -> Duration {
    let us = until_us.saturating_sub(now_us).max(1);
    Duration::from_secs(u64::try_from(us).unwrap_or(u64::MAX).div_ceil(1_000_000))
}

fn key_of(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

impl Entry {
    fn new(rate: &Rate, now_us: i64) -> Entry {
        Entry {
            tokens: f64::from(rate.burst),
            refilled_us: now_us,
            failures: 0,
            last_failure_us: 0,
            blocked_until_us: i64::MIN,
        }
    }

    fn refill(&mut self, rate: &Rate, now_us: i64) {
        let elapsed = now_us.saturating_sub(self.refilled_us).max(0) as f64;
        let every = micros(rate.every).max(1) as f64;
        self.tokens = (self.tokens + elapsed / every).min(f64::from(rate.burst));
        self.refilled_us = now_us;
        if self.failures > 0
            && now_us.saturating_sub(self.last_failure_us) > micros(rate.max_backoff)
        {
            self.failures = 0;
        }
    }

    /// Whether forgetting it changes nothing: a full bucket, no wait, no failures.
    fn is_quiet(&self, rate: &Rate, now_us: i64) -> bool {
        let mut entry = *self;
        entry.refill(rate, now_us);
        entry.tokens >= f64::from(rate.burst)
            && entry.failures == 0
            && now_us >= entry.blocked_until_us
    }
}

impl Limiter {
    pub(crate) fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, key: &str, now_us: i64, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let mut keys = self.keys.lock().expect("the limiter is never poisoned");
        let key = key_of(key);
        if !keys.contains_key(key) && keys.len() >= MAX_KEYS {
            keys.retain(|_, entry| !entry.is_quiet(&self.rate, now_us));
            if keys.len() >= MAX_KEYS {
                return None;
            }
        }
        let entry = keys
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(&self.rate, now_us));
        entry.refill(&self.rate, now_us);
        Some(f(entry))
    }

    /// Takes one attempt for `key` at `now_us`; `Err` with how long to wait when the key
    /// is backing off or out of attempts (or the limiter is full).
    pub(crate) fn attempt(&self, key: &str, now_us: i64) -> Result<(), Duration> {
        let every = self.rate.every;
        self.with(key, now_us, |entry| {
            if now_us < entry.blocked_until_us {
                return Err(wait_from(now_us, entry.blocked_until_us));
            }
            if entry.tokens < 1.0 {
                let missing = (1.0 - entry.tokens) * micros(every) as f64;
                return Err(wait_from(
                    now_us,
                    now_us.saturating_add(missing.ceil() as i64),
                ));
            }
            entry.tokens -= 1.0;
            Ok(())
        })
        .unwrap_or(Err(Duration::from_secs(1)))
    }

    /// Records a failed attempt for `key`: past the free failures, the key waits 1 s, then
    /// twice as long with each further failure, up to the rate's longest wait.
    pub(crate) fn failed(&self, key: &str, now_us: i64) {
        let rate = self.rate;
        self.with(key, now_us, |entry| {
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure_us = now_us;
            if let Some(beyond) = entry.failures.checked_sub(rate.free_failures + 1) {
                let wait = Duration::from_secs(1u64 << beyond.min(30)).min(rate.max_backoff);
                entry.blocked_until_us = now_us.saturating_add(micros(wait));
            }
        });
    }

    /// Records a successful attempt for `key`: its failures are forgotten.
    pub(crate) fn succeeded(&self, key: &str, now_us: i64) {
        self.with(key, now_us, |entry| {
            entry.failures = 0;
            entry.blocked_until_us = i64::MIN;
        });
    }
}

/// At most `permits` blocking jobs at once and `queue` waiting for one, each for at most
/// `max_wait`; the rest are turned away at once ([`Busy`]). The permit travels with the
/// blocking job, so a client that hangs up does not free it before the job ends.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: std::sync::Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    max_wait: Duration,
}

/// The gate is full: try again later.
#[derive(Debug)]
pub(crate) struct Busy;

/// Counts a waiter for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub(crate) fn new(permits: usize, queue: usize, max_wait: Duration) -> Gate {
        Gate {
            permits: std::sync::Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            max_wait,
        }
    }

    async fn enter(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = self.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn rate() -> Rate {
        Rate {
            burst: 3,
            every: Duration::from_secs(10),
            free_failures: 2,
            max_backoff: Duration::from_secs(60),
        }
    }

    /// `(at seconds, what happens, expected wait in seconds or 0 for allowed)`.
    fn check(steps: &[(i64, &str, u64)]) {
        let limiter = Limiter::new(rate());
        for &(at, what, expected) in steps {
            let now = at * S;
            match what {
                "try" => {
                    let got = limiter.attempt("k", now).err().map_or(0, |d| d.as_secs());
                    assert_eq!(got, expected, "try at {at} s in {steps:?}");
                }
                "fail" => limiter.failed("k", now),
                "ok" => limiter.succeeded("k", now),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_one_attempt_per_period() {
        check(&[
            (0, "try", 0),
            (0, "try", 0),
            (0, "try", 0),
            (0, "try", 10),
            (4, "try", 6),
            (10, "try", 0),
            (10, "try", 10),
        ]);
    }

    #[test]
    fn failures_beyond_the_free_ones_double_the_wait_and_success_forgets_them() {
        check(&[
            (100, "fail", 0),
            (100, "fail", 0),
            (100, "try", 0),
            (100, "fail", 0),
            (100, "try", 1),
            (101, "try", 0),
            (101, "fail", 0),
            (101, "try", 2),
            (103, "fail", 0),
            (103, "try", 4),
            (107, "ok", 0),
            (107, "try", 0),
        ]);
    }

    #[test]
    fn the_wait_is_capped_and_quiet_failures_are_forgotten() {
        let limiter = Limiter::new(rate());
        for _ in 0..40 {
            limiter.failed("k", 0);
        }
        assert_eq!(limiter.attempt("k", 0), Err(Duration::from_secs(60)));
        assert_eq!(limiter.attempt("k", 61 * S), Ok(()));
        limiter.failed("k", 61 * S);
        assert_eq!(limiter.attempt("k", 61 * S), Ok(()), "a fresh count");
    }

    #[test]
    fn keys_are_apart_and_long_keys_are_cut() {
        let limiter = Limiter::new(rate());
        for _ in 0..3 {
            assert_eq!(limiter.attempt("a", 0), Ok(()));
        }
        assert!(limiter.attempt("a", 0).is_err());
        assert_eq!(limiter.attempt("b", 0), Ok(()));
        let long = "é".repeat(200);
        assert_eq!(key_of(&long).len(), MAX_KEY);
        for _ in 0..3 {
            assert_eq!(limiter.attempt(&long, 0), Ok(()));
        }
        assert!(limiter.attempt(&format!("{long}x"), 0).is_err());
    }

    #[test]
    fn a_full_limiter_forgets_quiet_keys_and_refuses_when_none_is() {
        let limiter = Limiter::new(rate());
        for n in 0..MAX_KEYS {
            limiter.failed(&n.to_string(), 0);
        }
        assert!(limiter.attempt("new", 0).is_err(), "every key is failing");
        // Once the failures are forgotten, the old keys are quiet and make room.
        assert_eq!(limiter.attempt("new", 100 * S), Ok(()));
    }

    #[tokio::test]
    async fn the_gate_turns_away_what_it_cannot_queue() {
        let gate = std::sync::Arc::new(Gate::new(1, 1, Duration::from_secs(5)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(move || hold.recv().is_ok()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|| true).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(gate.run(|| true).await.is_err(), "one running, one waiting");
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
        assert!(gate.run(|| true).await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_longest_wait() {
        let gate = std::sync::Arc::new(Gate::new(1, 4, Duration::from_millis(50)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(move || hold.recv().is_ok()).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(gate.run(|| true).await.is_err());
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
    }
}
