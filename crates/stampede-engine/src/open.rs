//! The open model's tick loop (constant and ramping arrival rates): pusher's `Work` loop,
//! with intended starts kept per tick and late ticks counted instead of lost.

use std::rc::Rc;
use std::time::Instant;

use stampede_core::DropReason;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::action::Action;
use crate::arrivals::Arrivals;
use crate::calls::Shared;
use crate::timer::{RESOLUTION, Timer};

/// Ticks due sooner than this are waited for by yielding to the runtime (which keeps
/// polling the connections) rather than by sleeping on the timer. Two costs decide it,
/// both measured on the 2-vCPU VM this project runs on: re-arming the timer is a system
/// call and a hypervisor exit per tick, and a halted vCPU can take over a millisecond to be
/// scheduled again on a busy host, which is then schedule lag (at 5,000/s: lag p90 0.85 ms
/// sleeping, 0.16 ms yielding). So above 1,000 ticks per second the engine thread never
/// sleeps while it runs: it trades an idle core for sub-millisecond schedule precision.
/// Below that rate it sleeps on the timerfd until each tick is due.
const SPIN_HORIZON: std::time::Duration = std::time::Duration::from_micros(1000);

/// Ticks until the arrivals run out or `stop` is cancelled. Every due tick either starts a
/// call (a local task) or is dropped with its reason; none is queued or sent twice.
///
/// `end` is the work's deadline, whose timer cancels `stop`: the ticks due by then are
/// still sent when that timer fires first, so a run of rate r for d seconds schedules
/// r × d calls whichever wakes first.
pub(crate) async fn run<A: Action>(
    shared: &Rc<Shared<A>>,
    tracker: &TaskTracker,
    mut arrivals: Arrivals,
    start: Instant,
    end: Option<Instant>,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let mut timer = Timer::new()?;
    while let Some(next) = arrivals.peek() {
        // An intended start past what an Instant holds ends the schedule.
        let Some(due) = start.checked_add(next.offset) else {
            return Ok(());
        };
        if end.is_some_and(|end| due > end) {
            // Nothing more before the deadline: the schedule ends when its timer fires.
            stop.cancelled().await;
            return Ok(());
        }
        if stop.is_cancelled() {
            if end.is_some_and(|end| Instant::now() >= end) {
                // The deadline's timer fired: send what fell due by the deadline, then end.
                send_due(shared, tracker, &mut arrivals, start, end);
            }
            return Ok(());
        }
        let until_due = due.saturating_duration_since(Instant::now());
        if until_due > SPIN_HORIZON {
            tokio::select! {
                biased;
                _ = stop.cancelled() => continue,
                woke = timer.sleep_until(due) => woke?,
            }
        } else if !until_due.is_zero() {
            // Lets the calls in flight make progress, then looks again.
            tokio::task::yield_now().await;
            continue;
        }
        send_due(shared, tracker, &mut arrivals, start, end);
    }
    Ok(())
}

/// Starts (or drops, with the reason) every tick due by now and by `end`. At rates above the
/// timer's resolution several ticks fall due per wake; each keeps its own intended start.
fn send_due<A: Action>(
    shared: &Rc<Shared<A>>,
    tracker: &TaskTracker,
    arrivals: &mut Arrivals,
    start: Instant,
    end: Option<Instant>,
) {
    let now = Instant::now();
    while let Some(arrival) = arrivals.peek() {
        let Some(due) = start.checked_add(arrival.offset) else {
            break;
        };
        if due > now || end.is_some_and(|end| due > end) {
            break;
        }
        arrivals.advance();
        shared.count_scheduled();
        if now - due > arrival.period.max(RESOLUTION) {
            shared.drop_tick(due, DropReason::Late);
        } else if shared.try_acquire() {
            let call = shared.clone();
            tracker.spawn_local(async move { call.call(due).await });
        } else {
            shared.drop_tick(due, DropReason::NoSlot);
        }
    }
}
