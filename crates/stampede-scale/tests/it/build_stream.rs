//! [`build_updates`] and [`wait_for_build`] against the real workspace service of
//! `stampede sut`: one watch stream fanned out per workspace by a [`Dispatcher`].

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stampede_scale::{
    BuildUpdate, BuildWaitError, Ctx, Dispatcher, Transition, WaitError, build_updates,
    wait_for_build,
};
use stampede_sut::{Config, Server, WorkspaceConfig};

use crate::within;

const LIMIT: Duration = Duration::from_secs(10);

/// Sends one request on a fresh connection; the response with its body still to read.
async fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> http::Response<hyper::body::Incoming> {
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let (mut sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = req.body(Full::new(body)).expect("request");
    sender.send_request(req).await.expect("response")
}

/// [`send`], reading the JSON answer.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = send(server, method, path, token, body).await;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn a_dispatcher_fans_out_the_sut_build_stream_by_workspace_name() {
    let server = Server::start(Config {
        threads: 2,
        workspaces: WorkspaceConfig {
            provisioners: 2,
            build_time: Duration::from_millis(50),
            ..WorkspaceConfig::default()
        },
        ..Config::default()
    })
    .expect("sut starts");
    let user = json!({ "name": "scaletest-user", "password": "pw" });
    call(&server, "POST", "/ws/users", None, Some(user.clone())).await;
    let (_, login) = call(&server, "POST", "/ws/login", None, Some(user)).await;
    let token = login["token"].as_str().expect("token").to_owned();
    let token = Some(token.as_str());

    let names: Vec<String> = (0..3).map(|i| format!("scaletest-{i}")).collect();
    let dispatcher = Dispatcher::new(names.clone());
    let watch = send(&server, "GET", "/ws/builds/watch", token, None).await;
    assert_eq!(watch.status(), StatusCode::OK);
    let source = build_updates(BodyDataStream::new(watch.into_body()));
    let task = dispatcher
        .start(Ctx::default(), source, BuildUpdate::key)
        .expect("started once");

    let ctx = Ctx::default().with_timeout(LIMIT);
    let mut updates = Vec::new();
    for name in &names {
        updates.push(dispatcher.subscribe(name).expect("known key"));
        let (status, _) = call(
            &server,
            "POST",
            "/ws/workspaces",
            token,
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for (name, updates) in names.iter().zip(&mut updates) {
        let done = within(LIMIT, wait_for_build(updates, &ctx, Transition::Start)).await;
        let done = done.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (done.workspace_name.as_str(), done.build_number),
            (name.as_str(), 1)
        );
    }

    // coder's unexpected transition: waiting for a start while a stop comes.
    call(
        &server,
        "POST",
        "/ws/workspaces/scaletest-0/stop",
        token,
        None,
    )
    .await;
    let err = within(
        LIMIT,
        wait_for_build(&mut updates[0], &ctx, Transition::Start),
    )
    .await;
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("unexpected transition: expected start, got stop (build_number=2)".to_owned())
    );

    // The server drops the stream: every runner reads "update stream closed".
    let (status, closed) = call(&server, "POST", "/ws/admin/close-streams", None, None).await;
    assert_eq!((status, &closed["closed"]), (StatusCode::OK, &json!(1)));
    within(LIMIT, task).await.expect("dispatcher task ends");
    let err = within(
        LIMIT,
        wait_for_build(&mut updates[1], &ctx, Transition::Stop),
    )
    .await;
    assert_eq!(err, Err(BuildWaitError::Wait(WaitError::Closed)));
    assert_eq!(err.unwrap_err().to_string(), "update stream closed");
}
