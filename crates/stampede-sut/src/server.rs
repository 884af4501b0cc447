//! The running server: its own runtime on its own threads, the accept loop, and the
//! hyper connection setup shared by HTTP/1.1, h2c and TLS.
//!
//! Owning a runtime (instead of borrowing the caller's) lets sync code and async tests
//! alike start a server without nesting runtimes, and keeps its threads count exact.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::snap::SnapStore;
use crate::stall::Stall;
use crate::workspace::{self, WorkspaceConfig, Workspaces};
use crate::{Config, SnapConfig, SutError, routes, tls};

/// Pause after an accept error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// h2 streams a client may keep open on one connection; above hyper's default so
/// multiplexing load generators are not throttled by the target.
const H2_MAX_STREAMS: u32 = 1024;

/// A listening system under test, serving on its own threads until shut down or dropped.
///
/// ```no_run
/// let server = stampede_sut::Server::start(stampede_sut::Config::default())?;
/// println!("try {}/delay/100", server.url());
/// server.shutdown();
/// # Ok::<(), stampede_sut::SutError>(())
/// ```
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    url: String,
    token: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds the listener (port 0 allowed) and starts serving in background threads: a
    /// tokio multi-thread runtime of its own with `config.threads` workers, so it can be
    /// called from sync code and from inside another tokio runtime alike.
    pub fn start(config: Config) -> Result<Server, SutError> {
        Server::start_until(config, None, CancellationToken::new())
    }

    /// Like [`Server::start`], with the snapshot store under `/snap` serving from
    /// `snap.dir` (see [`SnapConfig`]). Stopping the server (drop or
    /// [`Server::shutdown`]) flushes nothing, so it is as abrupt as a crash for the store;
    /// starting again on the same directory is a restart after one.
    pub fn start_with_store(config: Config, snap: SnapConfig) -> Result<Server, SutError> {
        Server::start_until(config, Some(snap), CancellationToken::new())
    }

    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL without trailing slash, e.g. `http://127.0.0.1:41234`; an unspecified
    /// bind address (`0.0.0.0`, `::`) is shown as the loopback address of its family.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops accepting and drops the runtime; in-flight requests may be cut. Returns once
    /// the server's threads have stopped, so the port is free again.
    pub fn shutdown(self) {
        // Drop does the work, so forgetting to call this is no leak.
        drop(self);
    }

    /// Starts a server that also stops when `token` is cancelled.
    fn start_until(
        config: Config,
        snap: Option<SnapConfig>,
        token: CancellationToken,
    ) -> Result<Server, SutError> {
        config.validate()?;
        let snap = match snap {
            Some(snap) => Some(Arc::new(SnapStore::open(&snap).map_err(|source| {
                SutError::Store {
                    dir: snap.dir.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        let tls = if config.tls {
            Some(tls::acceptor(config.addr.ip())?)
        } else {
            None
        };
        let listener = std::net::TcpListener::bind(config.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| SutError::bind(config.addr, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| SutError::bind(config.addr, e))?;
        let stall = config.stall_every.map(|every| Stall {
            start: Instant::now(),
            every,
            stall_for: config.stall_for,
        });
        let workers = config.worker_threads();
        let acceptor = Acceptor {
            tls,
            stall,
            snap,
            token: token.clone(),
            workspaces: config.workspaces.clone(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("stampede-sut-main".to_owned())
            .spawn(move || acceptor.serve(listener, workers, ready_tx))
            .map_err(SutError::Runtime)?;
        let mut server = Server {
            local_addr,
            url: url_for(local_addr, config.tls),
            token,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(SutError::Runtime(e)),
            // The thread ended without a word: it panicked, so pass the panic on.
            Err(_) => {
                server.join();
                Err(SutError::Runtime(io::Error::other(
                    "the server thread ended unexpectedly",
                )))
            }
        }
    }

    /// Blocks until the serving thread has ended, re-raising its panic if it had one.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread is not worth a double panic while dropping.
            let _ = thread.join();
        }
    }
}

/// Binds, calls `on_listening` with the base URL, then serves on the server's own threads
/// until `shutdown` is cancelled; returns once they have stopped. For the CLI: it prints
/// `listening on {url}` from `on_listening`. Blocks the calling thread, so from async code
/// run it under `spawn_blocking`.
pub fn run_blocking(
    config: Config,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(&str),
) -> Result<(), SutError> {
    run_blocking_with_store(config, None, shutdown, on_listening)
}

/// [`run_blocking`] with the snapshot store on when `snap` is given.
pub fn run_blocking_with_store(
    config: Config,
    snap: Option<SnapConfig>,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(&str),
) -> Result<(), SutError> {
    let mut server = Server::start_until(config, snap, shutdown.child_token())?;
    on_listening(&server.url);
    server.join();
    Ok(())
}

/// Shows an unspecified bind address as loopback, which is where a local client can reach it.
fn url_for(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// Everything the accept loop needs besides the listener.
struct Acceptor {
    tls: Option<TlsAcceptor>,
    stall: Option<Stall>,
    snap: Option<Arc<SnapStore>>,
    token: CancellationToken,
    workspaces: WorkspaceConfig,
}

impl Acceptor {
    /// Runs on the server's main thread: builds the runtime, reports on `ready` whether
    /// serving started, serves until cancelled, then drops the runtime. The runtime lives
    /// and dies on this thread only, since dropping one in a caller's async context panics.
    fn serve(
        self,
        listener: std::net::TcpListener,
        workers: usize,
        ready: SyncSender<io::Result<()>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("stampede-sut")
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let service = Workspaces::start(self.workspaces.clone());
            // Spawned so that accepting runs on a worker like everything else.
            let _ = tokio::spawn(self.accept_loop(listener, service.clone())).await;
            service.shut_down().await;
        });
        runtime.shutdown_timeout(Duration::from_secs(1));
    }

    /// Accepts until cancelled, one task per connection; never gives up on accept errors.
    async fn accept_loop(self, listener: TcpListener, service: Workspaces) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // No header-read timeout: with one, hyper boxes and arms a timer for every
        // request, and a benchmark target has no slow-client attacks to fear.
        builder.http1().header_read_timeout(None).keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS);
        let builder = Arc::new(builder);
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.token.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, _peer)) => {
                    // Without it small responses wait for Nagle and latency is meaningless.
                    let _ = tcp.set_nodelay(true);
                    let conn = serve_tcp(
                        tcp,
                        self.tls.clone(),
                        self.stall,
                        service.clone(),
                        self.snap.clone(),
                        Arc::clone(&builder),
                    );
                    tokio::spawn(conn);
                }
                Err(e) if is_per_connection(&e) => {}
                Err(_) => {
                    // EMFILE and friends: give in-flight connections a moment to close.
                    tokio::select! {
                        () = self.token.cancelled() => return,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
    }
}

/// Accept errors that concern only the connection being accepted, so retrying at once is right.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

async fn serve_tcp(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    stall: Option<Stall>,
    service: Workspaces,
    snap: Option<Arc<SnapStore>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    match tls {
        None => serve(tcp, stall, service, snap, &builder).await,
        Some(tls) => {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(tcp)).await
            {
                serve(stream, stall, service, snap, &builder).await;
            }
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 (told apart by the h2 preface) until the client is done.
async fn serve<I>(
    io: I,
    stall: Option<Stall>,
    workspaces: Workspaces,
    snap: Option<Arc<SnapStore>>,
    builder: &auto::Builder<TokioExecutor>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // `/ws/...` goes to the workspace service (never stalled); the rest as before.
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let snap = snap.clone();
        let workspaces = workspace::is_workspace_path(req.uri().path()).then(|| workspaces.clone());
        async move {
            match workspaces {
                Some(service) => Ok(workspace::handle(service, req).await.map(Either::Right)),
                None => routes::handle(req, stall, snap.clone())
                    .await
                    .map(|r| r.map(Either::Left)),
            }
        }
    });
    // Client resets and disconnects are routine under load: nothing to report.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let check = |addr: &str, tls, want: &str| {
            let addr: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
            assert_eq!(url_for(addr, tls), want);
        };
        check("127.0.0.1:8080", false, "http://127.0.0.1:8080");
        check("0.0.0.0:81", false, "http://127.0.0.1:81");
        check("[::]:443", true, "https://[::1]:443");
        check("192.0.2.7:9", true, "https://192.0.2.7:9");
    }

    #[test]
    fn bind_conflict_is_a_bind_error_with_hint() {
        let first = Server::start(Config::default());
        let Ok(first) = first else {
            panic!("start failed: {:?}", first.err());
        };
        let taken = Config {
            addr: first.local_addr(),
            ..Config::default()
        };
        match Server::start(taken) {
            Err(SutError::Bind { addr, hint, .. }) => {
                assert_eq!(addr, first.local_addr());
                assert!(hint.contains("port 0"), "{hint}");
            }
            other => panic!("expected a bind error, got {other:?}"),
        }
        first.shutdown();
    }

    #[test]
    fn invalid_config_is_refused_before_binding() {
        let config = Config {
            stall_every: Some(Duration::from_millis(100)),
            stall_for: Duration::from_millis(100),
            ..Config::default()
        };
        assert!(matches!(
            Server::start(config),
            Err(SutError::InvalidConfig {
                field: "stall_for",
                ..
            })
        ));
    }
}
