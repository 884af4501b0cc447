//! Every route over HTTP/1.1, checked for status, body and content-length.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use stampede_sut::Config;

use crate::client::{H1, Reply, request, start};

fn content_length(reply: &Reply) -> Option<u64> {
    reply
        .headers
        .get("content-length")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn check(reply: &Reply, status: u16, body: &str) {
    assert_eq!(reply.status.as_u16(), status, "body {:?}", reply.text());
    assert_eq!(reply.text(), body);
    assert_eq!(
        content_length(reply),
        Some(body.len() as u64),
        "{:?}",
        reply.headers
    );
}

#[tokio::test]
async fn root_and_unknown_paths() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    check(&client.get("/").await, 200, "ok");
    check(&client.get("/?with=query").await, 200, "ok");
    check(&client.get("/nope").await, 404, "not found");
    let post = client
        .send(request("POST", "/", Bytes::from_static(b"x")))
        .await;
    check(&post, 200, "ok");
}

#[tokio::test]
async fn delay_waits_at_least_the_asked_time() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    let sent = Instant::now();
    let reply = client.get("/delay/50").await;
    let took = sent.elapsed();
    check(&reply, 200, "ok");
    assert!(took >= Duration::from_millis(50), "took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");

    let bad = client.get("/delay/soon").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("milliseconds"), "{}", bad.text());
    let too_long = client.get("/delay/3600001").await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_answers_that_status_with_empty_body() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    check(&client.get("/status/503").await, 503, "");
    check(&client.get("/status/201").await, 201, "");
    check(&client.get("/status/799").await, 799, "");
    let informational = client.get("/status/101").await;
    assert_eq!(
        informational.status,
        StatusCode::BAD_REQUEST,
        "{}",
        informational.text()
    );
    assert_eq!(
        client.get("/status/1000").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn bytes_sends_exactly_n_bytes() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    for n in [0usize, 1, 100_000, 1 << 20] {
        let reply = client.get(&format!("/bytes/{n}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body.len(), n);
        assert_eq!(content_length(&reply), Some(n as u64));
    }
    let too_many = client.get("/bytes/67108865").await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn echo_returns_body_and_content_type() {
    let server = start(Config::default());
    let mut client = H1::connect(server.local_addr()).await;
    let mut req = request("POST", "/echo", Bytes::from_static(br#"{"hello":"sut"}"#));
    req.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let reply = client.send(req).await;
    check(&reply, 200, r#"{"hello":"sut"}"#);
    assert_eq!(
        reply.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );

    let big = Bytes::from(vec![7u8; 3 << 20]);
    let reply = client.send(request("PUT", "/echo", big.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, big);
    assert!(reply.headers.get("content-type").is_none());

    check(&client.get("/echo").await, 200, "");
}
