//! The connection limits: a request head that trickles in, and a keep-alive connection
//! left idle, are closed after the header-read timeout; connections beyond the cap wait
//! until one closes. No store is involved, so these run on the in-memory one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_server::{HttpLimits, LoginLimits, Server};
use stampede_store::EventStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fixture::start_with;

async fn server(http: HttpLimits) -> (Arc<dyn EventStore>, Server) {
    let store = stampede_store::open("memory:").await.unwrap();
    let server = start_with(
        &store,
        stampede_core::SystemClock::shared(),
        http,
        LoginLimits::default(),
    )
    .await;
    (store, server)
}

/// Reads until the server closes the connection (or `limit` passes); what it sent and
/// how long that took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; read {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_trickles_in_is_cut_off() {
    let (_store, server) = server(HttpLimits {
        header_read_timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    // A slowloris client: one header line, then a byte now and then, never the blank line.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let (sent, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(!sent.contains("200 OK"), "{sent}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_one_that_never_speaks_too() {
    let (_store, server) = server(HttpLimits {
        header_read_timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, waited) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        waited >= Duration::from_millis(400),
        "kept alive for {waited:?}"
    );
    let (nothing, _) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert_eq!(nothing, "");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let (_store, server) = server(HttpLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
    })
    .await;
    let addr = server.addr();
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    // Let the server take both before the third arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");
    drop(first);
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_stops_accepting() {
    let (_store, server) = server(HttpLimits::default()).await;
    let addr = server.addr();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown does not wait for an idle keep-alive connection");
    let (rest, _) = read_until_closed(&mut idle, Duration::from_secs(1)).await;
    assert_eq!(rest, "");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}
