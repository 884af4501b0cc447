//! The job server through real HTTP on a loopback port, over real SQLite files and
//! PostgreSQL schemas: every test runs on both stores (`sqlite::<test>`, `postgres::<test>`).
//!
//! PostgreSQL tests need `STAMPEDE_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each runs in a schema of its own. Without it
//! they print a notice and check nothing, or fail when `CI` is set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use stampede_server::create_token;
use stampede_store::NewJob;

use fixture::{Fixture, on_every_backend, start};

mod auth;
mod fixture;
mod hardening;
mod metrics;
mod openapi;
mod retry;
mod sse;
mod testruns;

on_every_backend!(
    tokens_guard_every_call_but_healthz,
    a_submitted_job_runs_and_its_status_and_events_are_served,
    a_retried_submit_with_one_idempotency_key_makes_one_job,
    bad_requests_get_a_clear_4xx,
    pause_resume_and_cancel_through_the_api,
    a_restart_resumes_paused_jobs_and_fails_zombies,
    many_short_jobs_leave_the_store_usable,
    jobs_run_on_the_servers_clock,
    a_restart_settles_every_unfinished_job,
    idempotency_keys_and_nul_are_refused_with_a_4xx,
);

struct Reply {
    status: u16,
    content_type: String,
    /// `Retry-After`, if sent.
    retry_after: Option<u64>,
    body: Value,
}

/// One HTTP/1.1 request on a fresh connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    call_on(stream, method, path, token, body, headers).await
}

/// One HTTP/1.1 request on `stream`.
async fn call_on(
    stream: tokio::net::TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let addr = stream.peer_addr().unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        content_type,
        retry_after,
        body,
    }
}

const QUICK: &str = "name: quick\ntags: [smoke]\ntests:\n  - name: t\n    targets: { synthetic: { count: 2 } }\n    steps:\n      - name: hi\n        echo: { text: 'hi {{ target.id }}' }\n";

const SLOW: &str = "name: slow\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 1500ms }\n      - name: after\n        echo: { text: done }\n";

async fn tokens_guard_every_call_but_healthz(f: &Fixture) {
    let health = call(f.addr(), "GET", "/healthz", None, b"", &[]).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, Value::String("ok".into()))
    );
    let none = call(f.addr(), "GET", "/v1/jobs", None, b"", &[]).await;
    assert_eq!(none.status, 401);
    assert!(
        none.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Token")
    );
    let wrong = call(f.addr(), "GET", "/v1/jobs", Some("nope"), b"", &[]).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"]["code"], 401);
    // A revoked token stops working.
    let other = create_token(&f.store, "short-lived", "default")
        .await
        .unwrap();
    assert_eq!(
        call(f.addr(), "GET", "/v1/version", Some(&other), b"", &[])
            .await
            .status,
        200
    );
    let id = f
        .store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "short-lived")
        .unwrap()
        .id;
    assert!(f.store.revoke_token(id, 1).await.unwrap());
    assert_eq!(
        call(f.addr(), "GET", "/v1/version", Some(&other), b"", &[])
            .await
            .status,
        401
    );
    // Another project's token does not see this project's jobs.
    let created = f.post("/v1/jobs", QUICK).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let job = created.body["job_id"].as_u64().unwrap();
    let stranger = create_token(&f.store, "stranger", "elsewhere")
        .await
        .unwrap();
    let seen = call(
        f.addr(),
        "GET",
        &format!("/v1/jobs/{job}"),
        Some(&stranger),
        b"",
        &[],
    )
    .await;
    assert_eq!(seen.status, 404);
    let listed = call(f.addr(), "GET", "/v1/jobs", Some(&stranger), b"", &[]).await;
    assert_eq!(listed.body["jobs"], serde_json::json!([]));
}

async fn a_submitted_job_runs_and_its_status_and_events_are_served(f: &Fixture) {
    let created = f.post("/v1/jobs", QUICK).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["job_id"].as_u64().unwrap();
    let status = f.wait_for(id, "completed").await;
    assert_eq!(
        status["runs"][0]["tests"][0]["targets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(status["runs"][0]["reports"][0]["success"], true);
    // The state column follows the state event (listing is eventually consistent).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let list = loop {
        let list = f.get("/v1/jobs?state=completed&tag=smoke").await;
        if list.body["jobs"][0]["job_id"] == id || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(list.body["jobs"][0]["job_id"], id, "{}", list.body);
    assert_eq!(
        list.body["jobs"][0]["requestor"], "tests",
        "the token's name"
    );
    // Events page by sequence number, with nothing lost between pages.
    let all = f.get(&format!("/v1/jobs/{id}/events")).await.body["events"]
        .as_array()
        .unwrap()
        .clone();
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = f
            .get(&format!("/v1/jobs/{id}/events?after={after}&limit=3"))
            .await
            .body;
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        after = page["next_after"].as_u64().unwrap();
        paged.extend(events);
    }
    assert_eq!(paged, all);
    assert_eq!(all[0]["name"], "JobStateStarted");
    assert_eq!(all.last().unwrap()["name"], "JobStateCompleted");
}

async fn a_retried_submit_with_one_idempotency_key_makes_one_job(f: &Fixture) {
    let key = [("idempotency-key", "submit-1")];
    let first = call(
        f.addr(),
        "POST",
        "/v1/jobs",
        Some(&f.token),
        QUICK.as_bytes(),
        &key,
    )
    .await;
    let again = call(
        f.addr(),
        "POST",
        "/v1/jobs",
        Some(&f.token),
        QUICK.as_bytes(),
        &key,
    )
    .await;
    assert_eq!(first.status, 201);
    assert_eq!(again.status, 200);
    assert_eq!(first.body["job_id"], again.body["job_id"]);
    assert_eq!(again.body["created"], false);
    let list = f.get("/v1/jobs").await;
    assert_eq!(list.body["jobs"].as_array().unwrap().len(), 1);
}

async fn bad_requests_get_a_clear_4xx(f: &Fixture) {
    let cases: Vec<(Reply, u16, &str)> = vec![
        (f.post("/v1/jobs", "").await, 400, "send the job descriptor"),
        (
            f.post("/v1/jobs", "name: [unclosed").await,
            400,
            "the request body",
        ),
        (
            f.post("/v1/jobs", "{\"name\": 3}").await,
            422,
            "the descriptor is invalid",
        ),
        (
            f.post("/v1/jobs", "name: j\ntests: []\n").await,
            422,
            "the descriptor is invalid",
        ),
        (
            f.post("/v1/jobs", "version: '9.0'\nname: j\ntests: []\n")
                .await,
            400,
            "not supported",
        ),
        (
            call(
                f.addr(),
                "POST",
                "/v1/jobs",
                Some(&f.token),
                &[0xff, 0xfe],
                &[],
            )
            .await,
            400,
            "UTF-8",
        ),
        (f.get("/v1/jobs/999").await, 404, "there is no job 999"),
        (f.get("/v1/jobs/abc").await, 400, "not a job id"),
        (
            f.get("/v1/jobs?state=sleeping").await,
            400,
            "not a job state",
        ),
        (f.get("/v1/jobs?limit=0").await, 400, "limit"),
        (f.get("/v1/nothing").await, 404, "under /v1"),
        (
            f.post("/v1/jobs/1/cancel", "").await,
            404,
            "there is no job 1",
        ),
    ];
    for (reply, status, text) in cases {
        assert_eq!(reply.status, status, "{}", reply.body);
        let message = reply.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
            + &reply.body["error"]["details"].to_string();
        assert!(message.contains(text), "{text:?} not in {}", reply.body);
    }
    let huge = "#".repeat(2 * 1024 * 1024);
    let reply = f.post("/v1/jobs", &huge).await;
    assert_eq!(reply.status, 413);
    let invalid = f.post("/v1/jobs", "name: j\ntests:\n  - name: t\n    steps:\n      - name: s\n        sleep: { duration: 1s, extra: 1 }\n").await;
    let problems = invalid.body["error"]["details"]["problems"].to_string();
    assert!(
        problems.contains("tests[0].steps[0].sleep.extra: unknown field"),
        "{problems}"
    );
}

async fn pause_resume_and_cancel_through_the_api(f: &Fixture) {
    let id = f.post("/v1/jobs", SLOW).await.body["job_id"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/pause"), "").await.status,
        202
    );
    f.wait_for(id, "paused").await;
    let again = f.post(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(
        again.status, 409,
        "a paused job is not running: {}",
        again.body
    );
    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/resume"), "").await.status,
        202
    );
    let done = f.wait_for(id, "completed").await;
    assert_eq!(done["runs"][0]["tests"][0]["targets"][0]["step"], "after");

    let id = f.post("/v1/jobs", SLOW).await.body["job_id"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/cancel"), "").await.status,
        202
    );
    f.wait_for(id, "cancelled").await;
}

async fn a_restart_resumes_paused_jobs_and_fails_zombies(f: &mut Fixture) {
    let id = f.post("/v1/jobs", SLOW).await.body["job_id"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Shutting down pauses the running job.
    f.server.take().unwrap().shutdown().await;
    assert_eq!(f.store.job(id).await.unwrap().unwrap().state, "paused");
    // A job this server left `started` (it was killed) is a zombie.
    let zombie = f
        .store
        .create_job(NewJob {
            name: "zombie".into(),
            server_id: "test-server".into(),
            state: "started".into(),
            project: "default".into(),
            extended_descriptor: "{}".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    // A paused job whose stored descriptor is broken cannot be resumed: it fails.
    let broken = f
        .store
        .create_job(NewJob {
            name: "broken".into(),
            server_id: "test-server".into(),
            state: "paused".into(),
            project: "default".into(),
            extended_descriptor: "{}".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    let store = stampede_store::open(&f.url).await.unwrap();
    f.server = Some(start(&store).await);
    let done = f.wait_for(id, "completed").await;
    assert_eq!(done["runs"][0]["tests"][0]["targets"][0]["step"], "after");
    let events = f.get(&format!("/v1/jobs/{id}/events")).await.body["events"].clone();
    let ins = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "TargetIn")
        .count();
    assert_eq!(
        ins, 2,
        "each step entered once across the restart: {events}"
    );
    let zombie = f.store.job(zombie).await.unwrap().unwrap();
    assert_eq!(zombie.state, "failed");
    assert_eq!(f.store.job(broken).await.unwrap().unwrap().state, "failed");
    let failed = f
        .store
        .events(&stampede_store::EventQuery {
            job_id: broken,
            ..Default::default()
        })
        .await
        .unwrap();
    let why = failed
        .last()
        .and_then(|e| e.payload.clone())
        .unwrap_or_default();
    assert!(
        why.contains(&format!("failed to resume job {broken}")),
        "{why}"
    );
}

/// Every job runs on a runtime of its own that ends with it; the store's connections must not
/// (a PostgreSQL connection opened on a finished job's runtime broke every later request).
async fn many_short_jobs_leave_the_store_usable(f: &Fixture) {
    let mut ids = Vec::new();
    for _ in 0..20 {
        let reply = f.post("/v1/jobs", QUICK).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.body["job_id"].as_u64().unwrap());
    }
    for id in &ids {
        f.wait_for(*id, "completed").await;
    }
    // Requests after the jobs' runtimes are gone still work, on every pooled connection.
    for _ in 0..40 {
        let reply = f.get("/v1/jobs?limit=5").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

/// The server stamps and waits on the clock it is given: on a manual one, a job with an hour
/// between its runs completes at once, its runs exactly an hour apart in its events.
async fn jobs_run_on_the_servers_clock(f: &mut Fixture) {
    f.server.take().unwrap().shutdown().await;
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_796_601_600);
    let clock = Arc::new(stampede_core::ManualClock::auto_advance(t0));
    f.server = Some(fixture::start_on(&f.store, clock).await);
    let hourly = "name: hourly\nruns: 2\nrun_interval: 1h\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n";
    let started = std::time::Instant::now();
    let reply = f.post("/v1/jobs", hourly).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["job_id"].as_u64().unwrap();
    f.wait_for(id, "completed").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let events = f.get(&format!("/v1/jobs/{id}/events")).await;
    let runs: Vec<i64> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "RunStarted")
        .map(|e| e["at_us"].as_i64().unwrap())
        .collect();
    let t0 = stampede_core::micros(t0);
    assert_eq!(runs, [t0, t0 + 3_600_000_000]);
}

/// A server killed at any instant leaves its jobs in any unfinished state; the next start
/// settles every one by its state events, and the event streams of the settled jobs end.
async fn a_restart_settles_every_unfinished_job(f: &mut Fixture) {
    f.server.take().unwrap().shutdown().await;
    let registry = stampede_job::Registry::new().with(stampede_job::steps::Echo);
    let extended = stampede_job::Job::parse(QUICK, "quick", std::path::Path::new("."), &registry)
        .unwrap()
        .extended
        .to_string();
    let store = &f.store;
    let job = async |name: &str, state: &str, events: &[&str]| {
        let id = store
            .create_job(NewJob {
                name: name.into(),
                server_id: "test-server".into(),
                state: state.into(),
                project: "default".into(),
                extended_descriptor: extended.clone(),
                ..NewJob::default()
            })
            .await
            .unwrap();
        let events: Vec<stampede_store::NewEvent> = events
            .iter()
            .map(|name| stampede_store::NewEvent {
                job_id: id,
                name: (*name).into(),
                ..Default::default()
            })
            .collect();
        store.append(&events).await.unwrap();
        id
    };
    // Acknowledged (201), then killed before its thread started.
    let never_started = job("never-started", "unknown", &[]).await;
    // Killed between the state event and the state column (before they were one write).
    let lone_started = job("lone-started", "unknown", &["JobStateStarted"]).await;
    let cancelling = job(
        "cancelling",
        "cancelling",
        &["JobStateStarted", "JobStateCancelling"],
    )
    .await;
    let lagging = job(
        "lagging",
        "started",
        &["JobStateStarted", "JobStateCompleted"],
    )
    .await;

    let store = stampede_store::open(&f.url).await.unwrap();
    f.server = Some(start(&store).await);
    let done = f.wait_for(never_started, "completed").await;
    assert_eq!(
        done["runs"][0]["tests"][0]["targets"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{done}"
    );
    f.wait_for(lone_started, "failed").await;
    f.wait_for(cancelling, "cancelled").await;
    for (id, state) in [
        (never_started, "completed"),
        (lone_started, "failed"),
        (cancelling, "cancelled"),
        (lagging, "completed"),
    ] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let column = f.store.job(id).await.unwrap().unwrap().state;
            if column == state {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id}: column {column}, not {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            f.get(&format!("/v1/jobs/{id}/events/stream")),
        )
        .await
        .unwrap_or_else(|_| panic!("job {id}'s event stream did not end"));
        assert_eq!(stream.status, 200);
    }
}

/// An `Idempotency-Key` is at most 255 bytes (PostgreSQL answered 500 above its index's
/// limit), a key reused for another descriptor is refused (it silently returned the old
/// job), and a NUL in the descriptor's text is the request's fault (it was a 500).
async fn idempotency_keys_and_nul_are_refused_with_a_4xx(f: &Fixture) {
    let submit = async |key: &str, body: &str| {
        call(
            f.addr(),
            "POST",
            "/v1/jobs",
            Some(&f.token),
            body.as_bytes(),
            &[("idempotency-key", key)],
        )
        .await
    };
    let long = "k".repeat(4000);
    let reply = submit(&long, QUICK).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.to_string().contains("at most 255"),
        "{}",
        reply.body
    );
    let longest = "k".repeat(255);
    assert_eq!(submit(&longest, QUICK).await.status, 201);
    assert_eq!(submit(&longest, QUICK).await.status, 200, "a retry");
    let other = SLOW;
    let reply = submit(&longest, other).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(
        reply.body.to_string().contains("send a new key"),
        "{}",
        reply.body
    );
    let nul = r#"{"name": "a\u0000b", "tests": [{"name": "t", "steps": [{"name": "s", "echo": {"text": "x"}}]}]}"#;
    let reply = f.post("/v1/jobs", nul).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.to_string().contains("NUL"), "{}", reply.body);
}
