//! Several workers at once: pusher's `Farm` (the first error cancels all) and `Force` (N
//! identical workers sharing their listeners).

use std::cell::RefCell;

use futures_util::future::join_all;

use crate::action::Action;
use crate::schedule::Plan;
use crate::worker::{Hire, WorkCtx, WorkError, WorkReport, Worker};

/// Runs every worker on the plan concurrently on this thread. The first worker that fails
/// cancels the others; its error is returned. The plan is per worker (pusher: `rps` is per
/// worker).
pub async fn farm<A: Action>(
    workers: &[Worker<A>],
    ctx: &WorkCtx,
    plan: &Plan,
) -> Result<Vec<WorkReport>, WorkError> {
    let group = ctx.child();
    let first_error = RefCell::new(None);
    let runs = workers.iter().map(|worker| {
        let group = &group;
        let first_error = &first_error;
        async move {
            let result = worker.work(group, plan).await;
            match result {
                Ok(report) => Some(report),
                Err(error) => {
                    group.cancel();
                    first_error.borrow_mut().get_or_insert(error);
                    None
                }
            }
        }
    });
    let reports = join_all(runs).await;
    match first_error.into_inner() {
        Some(error) => Err(error),
        None => Ok(reports.into_iter().flatten().collect()),
    }
}

/// Hires `amount` workers named `force #0`, `force #1`, ... from the same options (so they
/// share the action and the listeners; each has its own concurrency gate) and farms them.
pub async fn force<A: Action>(
    amount: usize,
    hire: &Hire<A>,
    ctx: &WorkCtx,
    plan: &Plan,
) -> Result<Vec<WorkReport>, WorkError> {
    let workers: Vec<Worker<A>> = (0..amount)
        .map(|i| hire.clone().ident(format!("force #{i}")).build())
        .collect();
    farm(&workers, ctx, plan).await
}
