//! Keep-alive on HTTP/1.1 and h2c prior knowledge on the same port.

use std::time::{Duration, Instant};

use http::{StatusCode, Version};
use stampede_sut::Config;

use crate::client::{H1, H2, start};

#[tokio::test]
async fn http1_keeps_the_connection_alive() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    for path in ["/", "/status/500", "/bytes/70000", "/nope", "/delay/1", "/"] {
        let reply = client.get(path).await;
        assert_eq!(reply.version, Version::HTTP_11);
        assert!(reply.headers.get("connection").is_none_or(|v| v != "close"));
        assert!(
            !client.is_closed(),
            "server closed the connection after {path}"
        );
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_multiplexes() {
    let server = start(Config {
        threads: 2,
        ..Config::default()
    });
    let client = H2::connect(server.local_addr()).await;
    let reply = client.get("/").await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "ok");
    assert_eq!(client.get("/bytes/200000").await.body.len(), 200_000);
    assert_eq!(client.get("/status/418").await.status.as_u16(), 418);

    // Twenty 300ms requests at once on one connection finish together, not one by one.
    let sent = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.get("/delay/300").await }));
    }
    for task in tasks {
        let reply = task.await.expect("request task");
        assert_eq!(reply.status, StatusCode::OK);
    }
    let took = sent.elapsed();
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "not multiplexed: took {took:?}"
    );
}

#[tokio::test]
async fn http1_and_h2c_share_the_port() {
    let server = start(Config::default());
    let h2 = H2::connect(server.local_addr()).await;
    let mut h1 = H1::connect(server.local_addr()).await;
    assert_eq!(h1.get("/").await.version, Version::HTTP_11);
    assert_eq!(h2.get("/").await.version, Version::HTTP_2);
}
