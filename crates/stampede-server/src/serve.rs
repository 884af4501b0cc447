//! The accept loop: HTTP/1.1 connections served by hyper with the limits `axum::serve`
//! does not offer.
//!
//! - **Header-read timeout.** A request head must arrive whole within
//!   [`HttpLimits::header_read_timeout`] of the connection waiting for it; hyper starts that
//!   clock when it starts reading a head, which on a keep-alive connection is right after
//!   the previous response. So the same timeout is also the idle keep-alive timeout: a
//!   connection that sends nothing (or trickles a head byte by byte) is closed.
//! - **Connection cap.** At most [`HttpLimits::max_connections`] connections are served at
//!   once. At the cap the loop stops accepting: further connections wait in the kernel's
//!   listen backlog until one closes (idle ones close within the timeout above), rather
//!   than being accepted and dropped, so a client sees a slow connect, not a reset.
//! - **Graceful shutdown.** When the server stops, it stops accepting, asks every
//!   connection to finish its request in flight and close, and waits for them.
//!
//! Each request gets the peer's address as axum's [`ConnectInfo`] (the login limits use it).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// How connections are limited.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// How long a request head may take to arrive, counted from when the connection is
    /// ready for it (so also how long an idle keep-alive connection is kept).
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `stop`, then waits for the open connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().oneshot(request);
            async move { Ok::<_, Infallible>(answer.await.unwrap_or_else(|e| match e {})) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Waits after a failed accept unless only that one connection failed: out of file
/// descriptors, accepting again at once would spin (hyper and axum wait a second too).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
