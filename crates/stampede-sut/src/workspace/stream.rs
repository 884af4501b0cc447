//! The watch-all-builds stream: server-sent events to every open `GET /ws/builds/watch`,
//! and the response body type of the workspace service.
//!
//! Each watcher owns an unbounded channel, so a slow watcher never loses an update and
//! never slows the builds; updates are published under the service's state lock, so every
//! watcher sees them in the order the state changed. Closing (the admin endpoint, or the
//! server shutting down) drops the senders: each response then ends cleanly, which a
//! client reads as "the update stream closed".

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, mpsc};

use super::BuildUpdate;

/// First bytes of every stream: an SSE comment, so a client knows it is subscribed.
const HELLO: &[u8] = b": watching all workspace builds\n\n";

/// The open watchers.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    senders: Mutex<Vec<mpsc::UnboundedSender<Bytes>>>,
    open: Arc<Open>,
    /// Set at shutdown: later watchers get a stream that ends at once.
    shut: AtomicBool,
}

/// How many stream bodies are still alive, to wait for them at shutdown.
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    changed: Notify,
}

impl Streams {
    /// A new watcher: a body that carries every later update until closed.
    pub(crate) fn subscribe(&self) -> WsBody {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Bytes::from_static(HELLO));
        if !self.shut.load(Ordering::Acquire) {
            self.senders
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(tx);
        }
        self.open.count.fetch_add(1, Ordering::AcqRel);
        WsBody::Stream {
            rx,
            _open: OpenGuard(Arc::clone(&self.open)),
        }
    }

    /// Sends `update` to every watcher as one `build` event, forgetting watchers that left.
    pub(crate) fn publish(&self, update: &BuildUpdate) {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if senders.is_empty() {
            return;
        }
        let json = serde_json::to_string(update).unwrap_or_default();
        let event = Bytes::from(format!("event: build\ndata: {json}\n\n"));
        senders.retain(|tx| tx.send(event.clone()).is_ok());
    }

    /// Ends every open stream; returns how many there were.
    pub(crate) fn close_all(&self) -> usize {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        let closed = senders.iter().filter(|tx| !tx.is_closed()).count();
        senders.clear();
        closed
    }

    /// At shutdown: ends every stream, refuses new ones, and waits (at most `limit`) for
    /// the responses to be finished, so clients see a clean end rather than a reset.
    pub(crate) async fn shut_down(&self, limit: Duration) {
        self.shut.store(true, Ordering::Release);
        self.close_all();
        if self.open.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let drained = async {
            loop {
                let changed = self.open.changed.notified();
                if self.open.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(limit, drained).await;
        // The body is dropped just before hyper writes the last chunk: let it be written.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts one live stream body.
#[derive(Debug)]
pub(crate) struct OpenGuard(Arc<Open>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// Every response body of the workspace service.
#[derive(Debug)]
pub(crate) enum WsBody {
    /// One JSON document (or nothing), sent once.
    Once(Option<Bytes>),
    /// Server-sent events until the sender side is dropped.
    Stream {
        /// The events to send.
        rx: mpsc::UnboundedReceiver<Bytes>,
        /// Keeps the stream counted while the body lives.
        _open: OpenGuard,
    },
}

impl Body for WsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            WsBody::Once(chunk) => Poll::Ready(chunk.take().map(|c| Ok(Frame::data(c)))),
            WsBody::Stream { rx, .. } => rx.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, WsBody::Once(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            WsBody::Once(chunk) => {
                SizeHint::with_exact(chunk.as_ref().map_or(0, |c| c.len() as u64))
            }
            WsBody::Stream { .. } => SizeHint::default(),
        }
    }
}
