//! The per-thread HTTP action and its connections.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use stampede_core::{Failure, Outcome};
use stampede_engine::{Action, CallCtx, Completion};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{HttpPlan, Prepared};
use crate::h1::{ExchangeError, H1, Response, io_failure};

type Body = Full<Bytes>;

/// Calls the step's requests in turn over this thread's connections. Create one per engine
/// thread with that thread's share of the connections.
pub struct HttpAction {
    plan: HttpPlan,
    next: Cell<usize>,
    pool: Pool,
}

enum Pool {
    /// Each exchange checks out a connection; `permits` = connections.
    Http1 {
        permits: Semaphore,
        idle: RefCell<Vec<Conn>>,
    },
    /// Requests are multiplexed over `slots`, round robin. A slot's lock is held only
    /// while it connects, so one slot never opens two connections at once.
    Http2 {
        slots: Vec<tokio::sync::Mutex<Option<http2::SendRequest<Body>>>>,
        next: Cell<usize>,
    },
}

impl HttpAction {
    /// An action with `connections` connections of its own (at least one), opened lazily.
    pub fn new(plan: HttpPlan, connections: usize) -> HttpAction {
        let connections = connections.max(1);
        let pool = if plan.http2 {
            Pool::Http2 {
                slots: (0..connections)
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                next: Cell::new(0),
            }
        } else {
            Pool::Http1 {
                permits: Semaphore::new(connections),
                idle: RefCell::new(Vec::new()),
            }
        };
        HttpAction {
            plan,
            next: Cell::new(0),
            pool,
        }
    }

    fn pick(&self) -> &Prepared {
        let requests = &self.plan.requests;
        let i = self.next.get();
        self.next
            .set(if i + 1 == requests.len() { 0 } else { i + 1 });
        &requests[i]
    }

    async fn exchange_http1(&self, idle: &RefCell<Vec<Conn>>, request: &Prepared) -> Outcome {
        let keep_body = request.body_contains.is_some();
        let reused = idle.borrow_mut().pop();
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.connect_http1().await?,
        };
        let mut result = conn.exchange(request, keep_body).await;
        if let Err(error) = &result
            && error.nothing_received
            && was_reused
        {
            // The server closed the idle connection; one fresh try, as any client does.
            conn = self.connect_http1().await?;
            result = conn.exchange(request, keep_body).await;
        }
        let response = result.map_err(|error| error.failure)?;
        if response.reusable {
            idle.borrow_mut().push(conn);
        }
        evaluate(response.status, response.body.as_deref(), request)
    }

    async fn exchange_http2(
        &self,
        slots: &[tokio::sync::Mutex<Option<http2::SendRequest<Body>>>],
        next: &Cell<usize>,
        request: &Prepared,
    ) -> Outcome {
        let i = next.get();
        next.set((i + 1) % slots.len());
        let mut sender = {
            let mut slot = slots[i].lock().await;
            match slot.as_ref().filter(|s| !s.is_closed()) {
                Some(sender) => sender.clone(),
                None => {
                    let sender = self.connect_http2().await?;
                    *slot = Some(sender.clone());
                    sender
                }
            }
        };
        sender.ready().await.map_err(classify)?;
        let response = sender
            .send_request(build_http2(request))
            .await
            .map_err(classify)?;
        check(response, request).await
    }

    async fn connect_http1(&self) -> Result<Conn, Failure> {
        Ok(match self.connect().await? {
            Stream::Plain(tcp) => Conn::Plain(H1::new(tcp)),
            Stream::Tls(tls) => Conn::Tls(H1::new(tls)),
        })
    }

    async fn connect_http2(&self) -> Result<http2::SendRequest<Body>, Failure> {
        match self.connect().await? {
            Stream::Plain(tcp) => handshake_http2(tcp).await,
            Stream::Tls(tls) => {
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    // The server would not speak HTTP/2 on this connection.
                    return Err(Failure::Connect);
                }
                handshake_http2(tls).await
            }
        }
    }

    async fn connect(&self) -> Result<Stream, Failure> {
        let origin = &self.plan.origin;
        let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(|_| Failure::Connect)?;
        // Small requests must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let Some(config) = &self.plan.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = ServerName::try_from(origin.host.clone()).map_err(|_| Failure::Connect)?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|_| Failure::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl Action for HttpAction {
    async fn call(&self, _ctx: CallCtx) -> Completion {
        let request = self.pick();
        let timeout = self.plan.timeout;
        match &self.pool {
            Pool::Http1 { permits, idle } => {
                // Waiting for a free connection happens before `sent`: it is lag.
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let sent = Instant::now();
                let outcome = within(timeout, self.exchange_http1(idle, request)).await;
                Completion { sent, outcome }
            }
            Pool::Http2 { slots, next } => {
                let sent = Instant::now();
                let outcome = within(timeout, self.exchange_http2(slots, next, request)).await;
                Completion { sent, outcome }
            }
        }
    }
}

async fn within(timeout: std::time::Duration, exchange: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(Failure::Timeout))
}

/// An HTTP/1.1 connection, plain or over TLS.
enum Conn {
    Plain(H1<TcpStream>),
    Tls(H1<Box<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Conn {
    async fn exchange(
        &mut self,
        request: &Prepared,
        keep_body: bool,
    ) -> Result<Response, ExchangeError> {
        match self {
            Conn::Plain(h1) => h1.exchange(&request.wire, request.head, keep_body).await,
            Conn::Tls(h1) => h1.exchange(&request.wire, request.head, keep_body).await,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn handshake_http2<T>(io: T) -> Result<http2::SendRequest<Body>, Failure>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (sender, connection) = http2::Builder::new(LocalExec)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| Failure::Connect)?;
    tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Runs hyper's HTTP/2 background tasks on the worker's thread.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// An HTTP/2 request: the absolute URI carries the authority, so no Host header.
fn build_http2(request: &Prepared) -> Request<Body> {
    let mut built = Request::new(Full::new(request.body.clone()));
    *built.method_mut() = request.method.clone();
    *built.uri_mut() = request.absolute.clone();
    *built.headers_mut() = request.headers.clone();
    built.headers_mut().remove(http::header::HOST);
    built
}

/// Reads a whole HTTP/2 response (kept only when a body check needs it) and applies the
/// checks.
async fn check(response: http::Response<Incoming>, request: &Prepared) -> Outcome {
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut kept = request.body_contains.as_ref().map(|_| BytesMut::new());
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(classify)?;
        if let (Some(kept), Some(data)) = (kept.as_mut(), frame.data_ref()) {
            kept.extend_from_slice(data);
        }
    }
    evaluate(status, kept.as_deref(), request)
}

/// The checks: an accepted status (200-399 unless listed), then the body text.
fn evaluate(status: u16, body: Option<&[u8]>, request: &Prepared) -> Outcome {
    let status_ok = if request.status.is_empty() {
        (200..400).contains(&status)
    } else {
        request.status.contains(&status)
    };
    if !status_ok {
        return Err(Failure::Status(status));
    }
    if let Some(needle) = &request.body_contains {
        let body = body.unwrap_or_default();
        let found = needle.is_empty() || body.windows(needle.len()).any(|w| w == needle.as_ref());
        if !found {
            return Err(Failure::Check);
        }
    }
    Ok(())
}

fn classify(error: hyper::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    if error.is_canceled() || error.is_closed() || error.is_incomplete_message() {
        return Failure::Reset;
    }
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io_failure(io);
        }
        source = cause.source();
    }
    Failure::Other
}
