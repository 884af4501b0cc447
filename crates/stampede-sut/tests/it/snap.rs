//! The snapshot store over real HTTP: tokens, the snapshot calls, admin calls and a
//! restart on the same data directory.

use bytes::Bytes;
use http::StatusCode;
use stampede_sut::{Config, Server, SnapConfig};

use crate::client::{H1, Reply, request};

fn start(snap: SnapConfig) -> Server {
    Server::start_with_store(Config::default(), snap).expect("server with store starts")
}

/// Sends one request on a fresh connection with an optional bearer token.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut req = request(method, path, Bytes::copy_from_slice(body));
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("header value");
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
    }
    H1::connect(server.local_addr()).await.send(req).await
}

const ARCHIVE: &[u8] = b"stampede-snap 1\nD 755 0 d\nF 644 5 d/f\nhelloEND\n";

#[tokio::test]
async fn a_client_stores_lists_restores_and_deletes_snapshots_that_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(SnapConfig::new(tmp.path()));
    let auth = call(&server, "POST", "/snap/clients/alice", None, b"").await;
    assert_eq!(auth.status, StatusCode::OK, "{}", auth.text());
    let token = auth.text();
    let put = call(&server, "POST", "/snap/snapshots", Some(&token), ARCHIVE).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    let id = put.text().trim().to_owned();
    let other = call(&server, "POST", "/snap/snapshots", Some(&token), ARCHIVE).await;
    let other = other.text().trim().to_owned();

    let addr = server.local_addr();
    server.shutdown();
    let server = Server::start_with_store(
        Config {
            addr,
            ..Config::default()
        },
        SnapConfig::new(tmp.path()),
    )
    .expect("restart on the same port and directory");

    let list = call(&server, "GET", "/snap/snapshots", Some(&token), b"").await;
    assert_eq!(list.text(), format!("{id}\n{other}\n"));
    let get = call(
        &server,
        "GET",
        &format!("/snap/snapshots/{id}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!((get.status, &get.body[..]), (StatusCode::OK, ARCHIVE));
    let del = call(
        &server,
        "DELETE",
        &format!("/snap/snapshots/{other}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text());
    let del = call(
        &server,
        "DELETE",
        &format!("/snap/snapshots/{other}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    let gc = call(&server, "POST", "/snap/gc", None, b"").await;
    assert_eq!(gc.text(), "removed 0\n");

    // Another client sees nothing of alice's.
    let bob = call(&server, "POST", "/snap/clients/bob", None, b"")
        .await
        .text();
    let get = call(
        &server,
        "GET",
        &format!("/snap/snapshots/{id}"),
        Some(&bob),
        b"",
    )
    .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&server, "GET", "/snap/snapshots", Some(&bob), b"")
            .await
            .text(),
        ""
    );

    let removed = call(&server, "DELETE", "/snap/clients/alice", None, b"").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let list = call(&server, "GET", "/snap/snapshots", Some(&token), b"").await;
    assert_eq!(list.status, StatusCode::UNAUTHORIZED, "{}", list.text());
}

#[tokio::test]
async fn refusals_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(SnapConfig {
        admin_token: Some("s3cret".into()),
        max_snapshot_bytes: 64,
        ..SnapConfig::new(tmp.path())
    });
    let check = async |method, path, token: Option<&str>, body: &[u8], status, mentions: &str| {
        let reply = call(&server, method, path, token, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert!(
            reply.text().contains(mentions),
            "{method} {path}: {}",
            reply.text()
        );
    };
    check(
        "POST",
        "/snap/clients/a",
        None,
        b"",
        StatusCode::FORBIDDEN,
        "admin secret",
    )
    .await;
    check(
        "POST",
        "/snap/gc",
        Some("nope"),
        b"",
        StatusCode::FORBIDDEN,
        "admin",
    )
    .await;
    check(
        "POST",
        "/snap/clients/.x",
        Some("s3cret"),
        b"",
        StatusCode::BAD_REQUEST,
        "bad client",
    )
    .await;
    let token = call(&server, "POST", "/snap/clients/a", Some("s3cret"), b"")
        .await
        .text();
    check(
        "GET",
        "/snap/snapshots",
        None,
        b"",
        StatusCode::UNAUTHORIZED,
        "POST /snap/clients",
    )
    .await;
    check(
        "POST",
        "/snap/snapshots",
        Some(&token),
        b"junk",
        StatusCode::BAD_REQUEST,
        "stampede-snap 1",
    )
    .await;
    check(
        "POST",
        "/snap/snapshots",
        Some(&token),
        &[b'x'; 65],
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_snapshot_bytes",
    )
    .await;
    check(
        "GET",
        "/snap/snapshots/..",
        Some(&token),
        b"",
        StatusCode::NOT_FOUND,
        "no snapshot-store endpoint",
    )
    .await;
    check(
        "PUT",
        "/snap/snapshots",
        Some(&token),
        b"",
        StatusCode::METHOD_NOT_ALLOWED,
        "PUT",
    )
    .await;
    check(
        "GET",
        "/snap/nothing",
        Some(&token),
        b"",
        StatusCode::NOT_FOUND,
        "/snap/nothing",
    )
    .await;

    let plain = Server::start(Config::default()).unwrap();
    let reply = call(&plain, "GET", "/snap/snapshots", None, b"").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.text().contains("snapshot store is off"),
        "{}",
        reply.text()
    );
}
