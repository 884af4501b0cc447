//! One stream of updates fanned out to runners by key: coder's `WorkspaceDispatcher`.
//!
//! The system under test usually offers one stream for everything ("watch all workspace
//! builds"); each runner wants only its own entity's updates. A [`Dispatcher`] is made
//! with the keys of all runners, each key getting a buffer of [`DEFAULT_CAPACITY`]
//! updates. [`Dispatcher::start`] spawns the one task that reads the source:
//!
//! * an update for a known key goes to that key's buffer, kept until the runner
//!   subscribes ([`Dispatcher::subscribe`]) and reads it; when a buffer is full the task
//!   waits for its runner, as coder's does (so a runner that stops reading while staying
//!   subscribed holds everyone up once its buffer is full);
//! * an update for an unknown key, or for a runner that dropped its [`Updates`], is dropped;
//! * when the source ends (or the context is done), every buffer is closed: a runner reads
//!   what is left, then gets [`WaitError::Closed`], "update stream closed".

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Mutex, PoisonError};

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ctx::{Ctx, Stopped};

/// Coder's buffer per workspace: room for the ~9 updates of three builds, plus headroom.
pub const DEFAULT_CAPACITY: usize = 16;

/// Misuse of a [`Dispatcher`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The key was not given to [`Dispatcher::new`].
    #[error("no runner is registered under the key {0}")]
    UnknownKey(String),
    /// A key's updates can be taken once.
    #[error("the updates for the key {0} were already taken")]
    AlreadySubscribed(String),
    /// [`Dispatcher::start`] was called twice.
    #[error("the dispatcher is already started")]
    AlreadyStarted,
}

/// Why a runner waiting for an update got none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The source ended and this runner's buffer is empty.
    #[error("update stream closed")]
    Closed,
    /// The runner's context was done first.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Per-key buffers of updates, filled from one source.
pub struct Dispatcher<K, U> {
    receivers: Mutex<HashMap<K, Option<mpsc::Receiver<U>>>>,
    senders: Mutex<Option<HashMap<K, mpsc::Sender<U>>>>,
}

impl<K, U> Dispatcher<K, U>
where
    K: Eq + Hash + Clone + fmt::Debug + Send + 'static,
    U: Send + 'static,
{
    /// A buffer of [`DEFAULT_CAPACITY`] updates for each key.
    pub fn new(keys: impl IntoIterator<Item = K>) -> Self {
        Self::with_capacity(keys, DEFAULT_CAPACITY)
    }

    /// A buffer of `capacity` updates (at least 1) for each key.
    pub fn with_capacity(keys: impl IntoIterator<Item = K>, capacity: usize) -> Self {
        let (mut receivers, mut senders) = (HashMap::new(), HashMap::new());
        for key in keys {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            senders.insert(key.clone(), tx);
            receivers.insert(key, Some(rx));
        }
        Dispatcher {
            receivers: Mutex::new(receivers),
            senders: Mutex::new(Some(senders)),
        }
    }

    /// Takes the updates of `key`, those already buffered included. Once per key.
    pub fn subscribe(&self, key: &K) -> Result<Updates<U>, DispatchError> {
        let mut receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match receivers.get_mut(key) {
            None => Err(DispatchError::UnknownKey(format!("{key:?}"))),
            Some(slot) => match slot.take() {
                Some(rx) => Ok(Updates { rx }),
                None => Err(DispatchError::AlreadySubscribed(format!("{key:?}"))),
            },
        }
    }

    /// Spawns the task that reads `source` and routes each update by `key_of`; it ends,
    /// closing every buffer, when the source ends or `ctx` is done.
    pub fn start<S, F>(
        &self,
        ctx: Ctx,
        source: S,
        key_of: F,
    ) -> Result<JoinHandle<()>, DispatchError>
    where
        S: Stream<Item = U> + Send + 'static,
        F: Fn(&U) -> K + Send + 'static,
    {
        let senders = self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let senders = senders.ok_or(DispatchError::AlreadyStarted)?;
        Ok(tokio::spawn(route(ctx, source, key_of, senders)))
    }
}

async fn route<K, U, S, F>(ctx: Ctx, source: S, key_of: F, mut senders: HashMap<K, mpsc::Sender<U>>)
where
    K: Eq + Hash,
    S: Stream<Item = U>,
    F: Fn(&U) -> K,
{
    let mut source = pin!(source);
    // Dropping `senders` on return closes every buffer.
    while let Ok(Some(update)) = ctx.run(source.next()).await {
        let key = key_of(&update);
        let Some(tx) = senders.get(&key) else {
            continue;
        };
        match ctx.run(tx.send(update)).await {
            Ok(Ok(())) => {}
            // The runner dropped its updates: it is gone, so are its next updates.
            Ok(Err(_)) => {
                senders.remove(&key);
            }
            Err(_) => return,
        }
    }
}

/// One runner's updates.
#[derive(Debug)]
pub struct Updates<U> {
    rx: mpsc::Receiver<U>,
}

impl<U> Updates<U> {
    /// The next update, or [`WaitError::Closed`] once the source ended and all are read.
    pub async fn next(&mut self) -> Result<U, WaitError> {
        self.rx.recv().await.ok_or(WaitError::Closed)
    }

    /// [`Updates::next`], unless `ctx` is done first.
    pub async fn next_within(&mut self, ctx: &Ctx) -> Result<U, WaitError> {
        ctx.run(self.next()).await?
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    #[tokio::test]
    async fn subscribing_is_once_per_known_key() {
        let d: Dispatcher<&str, u32> = Dispatcher::new(["a"]);
        assert!(d.subscribe(&"a").is_ok());
        assert_eq!(
            d.subscribe(&"a").unwrap_err(),
            DispatchError::AlreadySubscribed("\"a\"".into())
        );
        assert_eq!(
            d.subscribe(&"b").unwrap_err().to_string(),
            "no runner is registered under the key \"b\""
        );
        d.start(Ctx::default(), stream::empty(), |_| "a").unwrap();
        assert_eq!(
            d.start(Ctx::default(), stream::empty(), |_| "a")
                .unwrap_err(),
            DispatchError::AlreadyStarted
        );
    }

    #[tokio::test]
    async fn a_context_done_closes_the_buffers() {
        let d: Dispatcher<&str, u32> = Dispatcher::new(["a"]);
        let ctx = Ctx::default();
        let task = d.start(ctx.clone(), stream::pending(), |_| "a").unwrap();
        let mut updates = d.subscribe(&"a").unwrap();
        ctx.token().cancel();
        task.await.unwrap();
        assert_eq!(updates.next().await, Err(WaitError::Closed));
        assert_eq!(WaitError::Closed.to_string(), "update stream closed");
    }
}
