//! A sleep with sub-millisecond precision for the open-model tick loop.
//!
//! Tokio's timer wheel has a 1 ms resolution (epoll's timeout is in milliseconds), which
//! would put up to 1 ms of schedule lag on every tick. On Linux the tick loop sleeps on a
//! `timerfd` instead: its expiry wakes the runtime's epoll directly, within the kernel's
//! timer slack (about 50 µs). Elsewhere it falls back to tokio's sleep.

use std::time::{Duration, Instant};

/// How late the generator may wake for a tick before that tick counts as missed (when the
/// period is shorter than this). SPEC §4: "one period or one timer resolution, whichever is
/// larger".
pub const RESOLUTION: Duration = Duration::from_millis(1);

#[cfg(target_os = "linux")]
pub(crate) use linux::Timer;

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use rustix::fd::OwnedFd;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::unix::AsyncFd;

    /// A one-shot high-resolution timer owned by one tick loop.
    pub(crate) struct Timer {
        fd: AsyncFd<OwnedFd>,
    }

    impl Timer {
        pub(crate) fn new() -> std::io::Result<Timer> {
            let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
            let fd = timerfd_create(TimerfdClockId::Monotonic, flags)?;
            // `register` is the non-deprecated path but is `unsafe`; the unsoundness `new` is
            // deprecated for (closing the fd behind the runtime's back) cannot happen here:
            // the `OwnedFd` lives inside the `AsyncFd` and is closed only when it is dropped.
            #[allow(deprecated)]
            let fd = AsyncFd::new(fd)?;
            Ok(Timer { fd })
        }

        /// Returns at `deadline` or soon after; at once if it has passed.
        pub(crate) async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
            let now = Instant::now();
            if deadline <= now {
                return Ok(());
            }
            // A zero it_value would disarm the timer, so wait at least 1 ns.
            let wait = (deadline - now).max(Duration::from_nanos(1));
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: wait.as_secs() as _,
                    tv_nsec: wait.subsec_nanos() as _,
                },
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            loop {
                let mut guard = self.fd.readable().await?;
                let mut buf = [0u8; 8];
                match rustix::io::read(guard.get_inner(), &mut buf) {
                    Ok(_) => return Ok(()),
                    Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) struct Timer;

#[cfg(not(target_os = "linux"))]
impl Timer {
    pub(crate) fn new() -> std::io::Result<Timer> {
        Ok(Timer)
    }

    pub(crate) async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        tokio::time::sleep_until(deadline.into()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn never_wakes_before_the_deadline_and_can_be_rearmed() {
        let mut timer = Timer::new().unwrap();
        for _ in 0..50 {
            let deadline = Instant::now() + Duration::from_micros(300);
            timer.sleep_until(deadline).await.unwrap();
            assert!(Instant::now() >= deadline, "woke before the deadline");
        }
        // A deadline in the past returns at once rather than disarming the timer.
        timer
            .sleep_until(Instant::now() - Duration::from_millis(1))
            .await
            .unwrap();
    }
}
