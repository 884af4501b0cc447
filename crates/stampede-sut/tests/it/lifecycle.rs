//! Starting and stopping: the URL, `shutdown`, and the CLI's `run_blocking`.

use std::sync::mpsc;
use std::time::Duration;

use http::StatusCode;
use stampede_sut::Config;
use tokio_util::sync::CancellationToken;

use crate::client::{H1, start};

#[tokio::test]
async fn url_names_the_bound_port_and_shutdown_frees_it() {
    let server = start(Config::default());
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(server.url(), format!("http://127.0.0.1:{}", addr.port()));
    assert_eq!(
        H1::connect(addr).await.get("/").await.status,
        StatusCode::OK
    );
    server.shutdown();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn run_blocking_serves_until_cancelled() {
    let token = CancellationToken::new();
    let (url_tx, url_rx) = mpsc::channel();
    let serve_token = token.clone();
    let thread = std::thread::spawn(move || {
        stampede_sut::run_blocking(Config::default(), serve_token, |url| {
            url_tx.send(url.to_owned()).expect("test waits for the url");
        })
    });
    let url = url_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("on_listening called");
    let addr = url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected url {url}"));
    assert_eq!(H1::connect(addr).await.get("/").await.text(), "ok");

    token.cancel();
    let result = tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("join task");
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after cancel"
    );
}

#[test]
fn run_blocking_reports_bind_errors_without_calling_back() {
    let first = start(Config::default());
    let mut called = false;
    let result = stampede_sut::run_blocking(
        Config {
            addr: first.local_addr(),
            ..Config::default()
        },
        CancellationToken::new(),
        |_| called = true,
    );
    let err = result.expect_err("port is taken");
    assert!(
        err.to_string().contains(&first.local_addr().to_string()),
        "{err}"
    );
    assert!(!called);
}
