//! A hand-written HTTP/1.1 server that answers from a script and records what it was sent,
//! and a proxy in front of the real job server that counts connections and can drop an
//! answer on the floor.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake server does with one request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// Answers this status with this body.
    Reply(u16, &'static str),
    /// Closes the connection without answering.
    Close,
    /// Never answers.
    Hang,
}

/// A `JobCreated` body.
pub(crate) const CREATED: &str =
    r#"{"job_id": 7, "name": "quick", "created": true, "status_url": "/v1/jobs/7"}"#;

/// k6's error envelope for `status`.
pub(crate) fn envelope(status: u16) -> &'static str {
    match status {
        503 => r#"{"error": {"code": 503, "message": "busy; try again"}}"#,
        429 => r#"{"error": {"code": 429, "message": "slow down"}}"#,
        _ => r#"{"error": {"code": 400, "message": "no"}}"#,
    }
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Instant,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) body: String,
}

pub(crate) struct Fake {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    serving: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Answers the n-th request with `answers[n]`, and 500 once they run out.
    pub(crate) async fn start(answers: Vec<Answer>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let serving = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let seen = seen.clone();
                    let answers = answers.clone();
                    tokio::spawn(async move { serve(stream, &seen, &answers).await });
                }
            }
        });
        Fake {
            addr,
            seen,
            serving,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

async fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, answers: &[Answer]) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(request);
        seen.len() - 1
    };
    match answers
        .get(index)
        .copied()
        .unwrap_or(Answer::Reply(500, "no more answers"))
    {
        Answer::Reply(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::Close => drop(stream),
        Answer::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

/// Reads one request: its head, then `content-length` bytes of body.
async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
    };
    let at = Instant::now();
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        at,
        method,
        path,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        body: String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned(),
    })
}

/// A TCP proxy to `upstream` that counts connections (one per attempt) and, for the first
/// `drop_answers` of them, passes the request on but never the answer.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    serving: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr, drop_answers: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let serving = tokio::spawn({
            let connections = connections.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let n = connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(relay(client, upstream, n < drop_answers));
                }
            }
        });
        Proxy {
            addr,
            connections,
            serving,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, drop_answer: bool) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if !drop_answer {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (mut client_read, _client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let forward = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    // Once the server starts answering, the request has been handled: hang up on both.
    let mut first = [0u8; 1];
    let _ = server_read.read(&mut first).await;
    forward.abort();
}
