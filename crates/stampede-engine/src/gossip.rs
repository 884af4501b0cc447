//! Gossip: telemetry from a worker to its listeners, with pusher's delivery rules.
//!
//! Each listener gets its own bounded channel (2 × the peak rate) per `work` call and reads
//! it in its own task. Before/after gossip is sent with back-pressure and is lossless until
//! the hard stop (then it is abandoned, as in pusher); `canceled` gossip is sent without
//! waiting and may be lost when a listener's buffer is full, but every loss is counted in
//! the [`WorkReport`](crate::WorkReport).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::LocalBoxFuture;
use stampede_core::{DropReason, Sample};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The stage of a call a gossip is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    /// Just before the action is called.
    BeforeAction,
    /// Just after the action returned.
    AfterAction,
    /// A scheduled call was dropped (no free slot, or the generator was late).
    Canceled,
}

impl When {
    /// Pusher's names: `before-target`, `after-target`, `canceled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            When::BeforeAction => "before-target",
            When::AfterAction => "after-target",
            When::Canceled => "canceled",
        }
    }
}

/// One telemetry event from a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gossip {
    /// Which stage.
    pub when: When,
    /// The call's intended start.
    pub intended: Instant,
    /// The finished call, on [`When::AfterAction`].
    pub sample: Option<Sample>,
    /// Why the call was dropped, on [`When::Canceled`].
    pub reason: Option<DropReason>,
}

impl Gossip {
    /// True for [`When::BeforeAction`].
    pub fn before_action(&self) -> bool {
        self.when == When::BeforeAction
    }
    /// True for [`When::AfterAction`].
    pub fn after_action(&self) -> bool {
        self.when == When::AfterAction
    }
    /// True for [`When::Canceled`].
    pub fn canceled(&self) -> bool {
        self.when == When::Canceled
    }
}

impl fmt::Display for Gossip {
    /// Pusher's rendering: `<empty>` when there is no result, else the result.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.sample, self.reason) {
            (Some(sample), _) => match sample.outcome {
                Ok(()) => f.write_str("ok"),
                Err(failure) => write!(f, "{failure}"),
            },
            (None, Some(reason)) => f.write_str(reason.name()),
            (None, None) => f.write_str("<empty>"),
        }
    }
}

/// The receiving end a listener reads gossip from; it ends when the worker is done.
pub type GossipReceiver = mpsc::Receiver<Gossip>;

/// A listener: pusher's `Gossiper`. One instance may serve several workers ([`crate::force`]
/// shares them): each `work` call calls `listen` once with a fresh channel.
pub trait Gossiper: Send + Sync + 'static {
    /// Consumes the worker's gossip until the channel closes. Runs as its own local task.
    fn listen(&self, worker: &str, gossips: GossipReceiver) -> LocalBoxFuture<'static, ()>;

    /// Called after this listener's channel closed and `listen` returned, in listener order;
    /// flush here. `work` returns only after every `stop` has.
    fn stop(&self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The channels of one `work` call.
pub(crate) struct Channels {
    senders: Vec<mpsc::Sender<Gossip>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Channels {
    /// Opens one channel per listener and starts its `listen` task.
    pub(crate) fn open(listeners: &[Arc<dyn Gossiper>], worker: &str, capacity: usize) -> Self {
        let mut senders = Vec::with_capacity(listeners.len());
        let mut tasks = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            senders.push(tx);
            tasks.push(tokio::task::spawn_local(listener.listen(worker, rx)));
        }
        Channels { senders, tasks }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Lossless delivery with back-pressure, abandoned at the hard stop.
    pub(crate) async fn send(&self, gossip: Gossip, abort: &CancellationToken) {
        for tx in &self.senders {
            tokio::select! {
                biased;
                _ = abort.cancelled() => return,
                _ = tx.send(gossip) => {}
            }
        }
    }

    /// Delivery without waiting; returns how many listeners missed it.
    pub(crate) fn try_send(&self, gossip: Gossip) -> u64 {
        let mut lost = 0;
        for tx in &self.senders {
            if tx.try_send(gossip).is_err() {
                lost += 1;
            }
        }
        lost
    }

    /// Closes every channel, waits for each `listen` to finish, then calls `stop` in order.
    pub(crate) async fn close(self, listeners: &[Arc<dyn Gossiper>]) {
        drop(self.senders);
        for (task, listener) in self.tasks.into_iter().zip(listeners) {
            // A listener that panicked has nothing left to flush; its stop still runs.
            let _ = task.await;
            listener.stop().await;
        }
    }
}
