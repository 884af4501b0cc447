//! A small client of the workspace service for the tests: JSON calls with a session token,
//! and a reader of the server-sent build stream that timestamps every update.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::{H1, tcp};

/// One user's view of the service.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    pub(crate) token: Option<String>,
}

impl Api {
    /// No token yet.
    pub(crate) fn anonymous(addr: SocketAddr) -> Api {
        Api { addr, token: None }
    }

    /// Creates user `name` and logs in.
    pub(crate) async fn user(addr: SocketAddr, name: &str) -> Api {
        let mut api = Api::anonymous(addr);
        let credentials = json!({ "name": name, "password": "secret-1" });
        let (status, body) = api.call("POST", "/ws/users", Some(&credentials)).await;
        assert_eq!(status, StatusCode::CREATED, "create user: {body}");
        let (status, body) = api.call("POST", "/ws/login", Some(&credentials)).await;
        assert_eq!(status, StatusCode::OK, "log in: {body}");
        api.token = Some(body["token"].as_str().expect("a token").to_owned());
        api
    }

    /// One request on a fresh connection; the answer's status and JSON body.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        self.raw(method, path, body).await
    }

    /// Like [`Api::call`] with the body sent as is.
    pub(crate) async fn raw(&self, method: &str, path: &str, body: Bytes) -> (StatusCode, Value) {
        let reply = H1::connect(self.addr)
            .await
            .send(self.request(method, path, body))
            .await;
        let text = reply.text();
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {} {text:?} is not JSON: {e}",
                reply.status
            )
        });
        (reply.status, value)
    }

    fn request(&self, method: &str, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(Full::new(body)).expect("valid request")
    }

    /// Creates workspace `name`, which queues its first start build.
    pub(crate) async fn create(&self, name: &str) -> Value {
        let (status, body) = self
            .call("POST", "/ws/workspaces", Some(&json!({ "name": name })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {name}: {body}");
        body
    }

    /// Opens the watch-all-builds stream.
    pub(crate) async fn watch(&self) -> Watch {
        let (mut sender, conn) = http1::handshake(TokioIo::new(tcp(self.addr).await))
            .await
            .expect("http1 handshake");
        tokio::spawn(conn);
        let req = self.request("GET", "/ws/builds/watch", Bytes::new());
        let response = sender.send_request(req).await.expect("watch response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(read_events(response.into_body(), tx));
        Watch { rx }
    }
}

/// What the stream gave.
#[derive(Debug)]
pub(crate) enum Event {
    /// One update and when it arrived.
    Update(Instant, Value),
    /// The response ended cleanly.
    End,
    /// The connection broke mid-response.
    Broken(String),
}

/// The updates of one open stream.
pub(crate) struct Watch {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Watch {
    /// The next event, failing the test after `limit`.
    pub(crate) async fn next(&mut self, limit: Duration) -> Event {
        match tokio::time::timeout(limit, self.rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the reader ended without saying why"),
            Err(_) => panic!("no event within {limit:?}"),
        }
    }

    /// The next update as `(arrival, [name, number, transition, status])`.
    pub(crate) async fn update(&mut self, limit: Duration) -> (Instant, Value) {
        match self.next(limit).await {
            Event::Update(at, value) => (at, value),
            other => panic!("expected an update, got {other:?}"),
        }
    }

    /// Whether nothing arrives within `quiet`.
    pub(crate) async fn is_quiet(&mut self, quiet: Duration) -> bool {
        match tokio::time::timeout(quiet, self.rx.recv()).await {
            Err(_) => true,
            Ok(event) => {
                eprintln!("unexpected event: {event:?}");
                false
            }
        }
    }
}

/// The four fields of an update as one compact value, for equality checks.
pub(crate) fn update(name: &str, number: u64, transition: &str, status: &str) -> Value {
    json!({
        "workspace_name": name,
        "build_number": number,
        "transition": transition,
        "status": status,
    })
}

async fn read_events(mut body: hyper::body::Incoming, tx: mpsc::UnboundedSender<Event>) {
    let mut buffer = String::new();
    loop {
        let frame = match body.frame().await {
            None => {
                let _ = tx.send(Event::End);
                return;
            }
            Some(Err(e)) => {
                let _ = tx.send(Event::Broken(e.to_string()));
                return;
            }
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = Instant::now();
        buffer.push_str(std::str::from_utf8(&data).expect("UTF-8 events"));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data = event.lines().find_map(|l| l.strip_prefix("data: "));
            if let Some(data) = data {
                let value = serde_json::from_str(data).expect("JSON data");
                let _ = tx.send(Event::Update(at, value));
            }
        }
    }
}
