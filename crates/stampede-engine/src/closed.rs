//! The closed model: virtual users that call the action back to back, with no pacing.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::action::Action;
use crate::calls::Shared;

/// Starts `vus` virtual-user tasks; they end at `stop` or when the shared iteration budget
/// is spent.
pub(crate) fn run<A: Action>(
    shared: &Rc<Shared<A>>,
    tracker: &TaskTracker,
    vus: u64,
    iterations: Option<u64>,
    stop: &CancellationToken,
) {
    let budget = Rc::new(Cell::new(iterations));
    for _ in 0..vus {
        let shared = shared.clone();
        let budget = budget.clone();
        let stop = stop.clone();
        tracker.spawn_local(async move {
            loop {
                if stop.is_cancelled() {
                    break;
                }
                match budget.get() {
                    Some(0) => break,
                    Some(left) => budget.set(Some(left - 1)),
                    None => {}
                }
                shared.count_scheduled();
                shared
                    .counts
                    .in_flight
                    .set(shared.counts.in_flight.get() + 1);
                shared.counts.sent.set(shared.counts.sent.get() + 1);
                shared.call(Instant::now()).await;
                // An action that completes without waiting would otherwise never let the
                // runtime run its timers (and so never see `stop`).
                tokio::task::consume_budget().await;
            }
        });
    }
}
