//! Wall-clock time, passed in rather than read from a global (STYLE habit 9), so that the
//! job runner's waits (run interval, retry interval, a paused sleep's deadline) and the
//! times it records can run on a [`ManualClock`] in tests: a one-hour run interval then
//! takes no time and its events are exactly one hour apart.
//!
//! Engine timing (ticks, latencies) is monotonic and stays on `Instant`; this is the
//! calendar time events are stamped with and waits that survive a pause are measured in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wait on a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the time comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;

    /// A future that completes once [`now`](Clock::now) has reached `deadline` (at once if it
    /// has already).
    fn sleep_until(&self, deadline: SystemTime) -> Sleep;

    /// Microseconds since the Unix epoch, now (what events are stamped with).
    fn now_us(&self) -> i64 {
        micros(self.now())
    }
}

/// Microseconds since the Unix epoch of `time` (0 before it, `i64::MAX` past year 294,000).
pub fn micros(time: SystemTime) -> i64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// The time `us` microseconds after the Unix epoch (the epoch for negative values).
pub fn from_micros(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// The real clock; waits are tokio timers, so they follow tokio's paused time in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The real clock as a shared [`Clock`].
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: SystemTime) -> Sleep {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Box::pin(tokio::time::sleep(left))
    }
}

/// A clock that moves only when told to: [`advance`](ManualClock::advance) and
/// [`set`](ManualClock::set) wake the waits whose deadline has come. With
/// [`auto_advance`](ManualClock::auto_advance), a wait instead moves the clock to its own
/// deadline and completes at once, as tokio's paused time does.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<Manual>>,
}

#[derive(Debug)]
struct Manual {
    now: SystemTime,
    auto: bool,
    /// The pending waits, by id: a wait that is dropped (a `select!` took another branch)
    /// takes itself out.
    waiting: Vec<(u64, Waker)>,
    next_id: u64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new(Manual {
                now: start,
                auto: false,
                waiting: Vec::new(),
                next_id: 0,
            })),
        }
    }

    /// A clock standing at `start` whose waits move it to their deadline.
    pub fn auto_advance(start: SystemTime) -> ManualClock {
        let clock = ManualClock::new(start);
        clock.lock().auto = true;
        clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut manual = self.lock();
        manual.now += by;
        manual.waiting.drain(..).for_each(|(_, w)| w.wake());
    }

    /// Sets the clock to `now` (backwards too).
    pub fn set(&self, now: SystemTime) {
        let mut manual = self.lock();
        manual.now = now;
        manual.waiting.drain(..).for_each(|(_, w)| w.wake());
    }

    /// How many waits are pending: a test's way to know its subject is waiting.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().now
    }

    fn sleep_until(&self, deadline: SystemTime) -> Sleep {
        let id = {
            let mut manual = self.lock();
            manual.next_id += 1;
            manual.next_id
        };
        Box::pin(ManualSleep {
            clock: self.clone(),
            deadline,
            id,
        })
    }
}

struct ManualSleep {
    clock: ManualClock,
    deadline: SystemTime,
    id: u64,
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.clock.lock().waiting.retain(|(id, _)| *id != self.id);
    }
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut manual = self.clock.lock();
        if manual.auto && manual.now < self.deadline {
            manual.now = self.deadline;
        }
        let id = self.id;
        manual.waiting.retain(|(waiting, _)| *waiting != id);
        if manual.now >= self.deadline {
            return Poll::Ready(());
        }
        manual.waiting.push((id, cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn a_manual_wait_ends_when_the_clock_is_advanced_past_it() {
        let clock = ManualClock::new(at(100));
        let mut sleep = clock.sleep_until(at(110));
        assert!(futures_poll(&mut sleep).is_pending());
        assert_eq!(clock.waiting(), 1);
        clock.advance(Duration::from_secs(5));
        assert!(futures_poll(&mut sleep).is_pending());
        clock.advance(Duration::from_secs(5));
        assert!(futures_poll(&mut sleep).is_ready());
        assert_eq!(clock.now_us(), 110_000_000);
        assert_eq!(clock.waiting(), 0);
        let dropped = clock.sleep_until(at(200));
        let mut dropped = dropped;
        assert!(futures_poll(&mut dropped).is_pending());
        assert_eq!(clock.waiting(), 1);
        drop(dropped);
        assert_eq!(clock.waiting(), 0, "a dropped wait is no longer waiting");
        clock.set(at(50));
        assert_eq!(clock.now(), at(50), "set moves it back too");
    }

    #[tokio::test]
    async fn an_auto_advancing_wait_moves_the_clock_to_its_deadline() {
        let clock = ManualClock::auto_advance(at(100));
        clock.sleep_until(at(3700)).await;
        assert_eq!(clock.now(), at(3700));
        // A deadline in the past does not move it back.
        clock.sleep_until(at(5)).await;
        assert_eq!(clock.now(), at(3700));
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_waits_on_tokio_time() {
        let start = tokio::time::Instant::now();
        let clock = SystemClock;
        clock
            .sleep_until(clock.now() + Duration::from_secs(30))
            .await;
        assert!(start.elapsed() >= Duration::from_secs(29));
    }

    #[test]
    fn micros_round_trip() {
        assert_eq!(micros(from_micros(1_234_567)), 1_234_567);
        assert_eq!(from_micros(-5), UNIX_EPOCH);
    }

    fn futures_poll(sleep: &mut Sleep) -> Poll<()> {
        let waker = Waker::noop();
        sleep.as_mut().poll(&mut Context::from_waker(waker))
    }
}
