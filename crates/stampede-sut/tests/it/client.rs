//! Minimal test clients over hyper's connection-level API, so the tests see exactly
//! what went over one connection (keep-alive, protocol version).

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A whole response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The body as text, for messages.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Starts a server with `config` or fails the test with the reason.
pub(crate) fn start(config: stampede_sut::Config) -> stampede_sut::Server {
    match stampede_sut::Server::start(config) {
        Ok(server) => server,
        Err(e) => panic!("server did not start: {e}"),
    }
}

pub(crate) async fn tcp(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    tcp.set_nodelay(true).expect("nodelay");
    tcp
}

/// One HTTP/1.1 connection.
pub(crate) struct H1 {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl H1 {
    pub(crate) async fn connect(addr: SocketAddr) -> H1 {
        H1::over(tcp(addr).await).await
    }

    pub(crate) async fn over<I>(io: I) -> H1
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .expect("http1 handshake");
        H1 {
            sender,
            conn: tokio::spawn(conn),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        self.send(request("GET", path, Bytes::new())).await
    }

    pub(crate) async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.expect("connection still usable");
        let response = self.sender.send_request(req).await.expect("response");
        collect(response).await
    }

    /// Whether the server has closed this connection.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed() || self.conn.is_finished()
    }
}

/// One HTTP/2 connection; cheap to clone, requests multiplex.
#[derive(Clone)]
pub(crate) struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
    authority: String,
}

impl H2 {
    /// h2c with prior knowledge.
    pub(crate) async fn connect(addr: SocketAddr) -> H2 {
        H2::over(tcp(addr).await, &addr.to_string()).await
    }

    pub(crate) async fn over<I>(io: I, authority: &str) -> H2
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("http2 handshake");
        tokio::spawn(conn);
        H2 {
            sender,
            authority: authority.to_owned(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        let mut sender = self.sender.clone();
        sender.ready().await.expect("h2 connection usable");
        let uri = format!("http://{}{path}", self.authority);
        let response = sender
            .send_request(request("GET", &uri, Bytes::new()))
            .await
            .expect("h2 response");
        collect(response).await
    }
}

pub(crate) fn request(method: &str, uri: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .body(Full::new(body))
        .expect("valid request")
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}
