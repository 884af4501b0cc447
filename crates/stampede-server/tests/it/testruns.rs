//! Test runs through real HTTP: create, metric pushes (a retried push stores nothing twice,
//! a gap is refused), stop, finish, progress, merged summaries; validate-options,
//! validate-token and the instance tag; every bad body a clear 4xx.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stampede_core::{Failure, Sample};
use stampede_metrics::Snapshot;

use crate::call;
use crate::fixture::{Fixture, on_every_backend};

on_every_backend!(
    a_test_run_is_created_streamed_stopped_and_finished,
    a_retried_push_stores_nothing_twice_and_a_gap_is_refused,
    bad_test_run_requests_get_a_clear_4xx,
    validate_options_and_validate_token,
    a_user_logs_in_for_a_token_of_their_project,
    test_progress_answers_for_jobs_the_server_runs,
);

/// A snapshot of `n` calls of `ms` milliseconds each, one in ten failed with a 503.
fn snapshot(n: u64, ms: u64) -> Value {
    let mut s = Snapshot::default();
    let t0 = Instant::now();
    for i in 0..n {
        s.record(&Sample {
            intended: t0,
            sent: t0,
            done: t0 + Duration::from_millis(ms),
            outcome: if i % 10 == 0 {
                Err(Failure::Status(503))
            } else {
                Ok(())
            },
        });
    }
    s.started = n;
    serde_json::to_value(s.to_wire()).unwrap()
}

fn push(first: u64, snapshots: &[(&str, f64, Value)]) -> String {
    let snapshots: Vec<Value> = snapshots
        .iter()
        .map(|(step, elapsed, snapshot)| {
            json!({ "step": step, "target": "local", "elapsed_s": elapsed, "snapshot": snapshot })
        })
        .collect();
    json!({ "first": first, "snapshots": snapshots }).to_string()
}

async fn create(f: &Fixture, duration: i64) -> String {
    let body = json!({ "name": "local", "vus": 10, "duration": duration,
        "thresholds": { "latency": ["p(99) < 100"] } });
    let created = f.post("/v1/tests", &body.to_string()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let reference = created.body["reference_id"].as_str().unwrap().to_string();
    assert_eq!(
        created.body["results_url"],
        format!("/v1/tests/{reference}")
    );
    reference
}

async fn a_test_run_is_created_streamed_stopped_and_finished(f: &Fixture) {
    let r = create(f, 10).await;
    let progress = f.get(&format!("/v1/test-progress/{r}")).await;
    assert_eq!(progress.body["run_status"], -2, "{}", progress.body);

    let pushed = f
        .post(
            &format!("/v1/tests/{r}/metrics"),
            &push(
                0,
                &[
                    ("t/a", 1.0, snapshot(100, 5)),
                    ("t/a", 2.0, snapshot(100, 50)),
                ],
            ),
        )
        .await;
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    assert_eq!(pushed.body, json!({ "stored": 2, "stop": false }));
    let progress = f.get(&format!("/v1/test-progress/{r}")).await;
    assert_eq!(progress.body["run_status"], 2);
    assert_eq!(progress.body["progress"], 0.2);

    // A stop is told to the next push.
    assert_eq!(f.post(&format!("/v1/tests/{r}/stop"), "").await.status, 202);
    let pushed = f
        .post(
            &format!("/v1/tests/{r}/metrics"),
            &push(2, &[("t/b", 1.0, snapshot(10, 1))]),
        )
        .await;
    assert_eq!(pushed.body, json!({ "stored": 3, "stop": true }));

    let finished = json!({ "result_status": 1, "run_status": 5,
        "thresholds": { "latency": { "p(99) < 100": false } } });
    let reply = f
        .post(&format!("/v1/tests/{r}"), &finished.to_string())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let run = f.get(&format!("/v1/tests/{r}")).await.body;
    assert_eq!(run["run_status"], 5);
    assert_eq!(run["result_status"], 1);
    assert_eq!(run["snapshots"], 3);
    assert_eq!(run["thresholds"]["latency"]["p(99) < 100"], false);
    // Merged per step: 200 calls on t/a, half at 5 ms and half at 50 ms.
    let a = &run["steps"][0];
    assert_eq!(a["step"], "t/a");
    assert_eq!(a["summary"]["requests"]["total"], 200);
    assert_eq!(a["summary"]["requests"]["failed"], 20);
    assert_eq!(a["summary"]["failures"]["status 503"], 20);
    assert_eq!(a["summary"]["status"], "failed");
    let p99 = a["summary"]["latency_ms"]["response"]["p99"]
        .as_f64()
        .unwrap();
    assert!((p99 - 50.0).abs() < 0.1, "{p99}");
    let p50 = a["summary"]["latency_ms"]["response"]["p50"]
        .as_f64()
        .unwrap();
    assert!((p50 - 5.0).abs() < 0.01, "{p50}");
    assert_eq!(run["steps"][1]["summary"]["requests"]["total"], 10);
    // The job record says it ended, and it shows in the list with its internal tag.
    let list = f.get("/v1/jobs?tag=_testrun").await.body;
    assert_eq!(list["jobs"][0]["state"], "cancelled", "{list}");
    // A finished run takes nothing more.
    for (path, body) in [
        (format!("/v1/tests/{r}"), finished.to_string()),
        (format!("/v1/tests/{r}/metrics"), push(3, &[])),
        (format!("/v1/tests/{r}/stop"), String::new()),
    ] {
        let reply = f.post(&path, &body).await;
        assert_eq!(reply.status, 409, "{path}: {}", reply.body);
    }
}

async fn a_retried_push_stores_nothing_twice_and_a_gap_is_refused(f: &Fixture) {
    let r = create(f, -1).await;
    let path = format!("/v1/tests/{r}/metrics");
    let one = push(0, &[("t/a", 1.0, snapshot(7, 3))]);
    assert_eq!(f.post(&path, &one).await.body["stored"], 1);
    // The same push again (its answer was lost): nothing new.
    assert_eq!(f.post(&path, &one).await.body["stored"], 1);
    // Overlapping: only the new tail is stored.
    let two = push(
        0,
        &[("t/a", 1.0, snapshot(7, 3)), ("t/a", 2.0, snapshot(5, 3))],
    );
    assert_eq!(f.post(&path, &two).await.body["stored"], 2);
    // A gap.
    let gap = f
        .post(&path, &push(5, &[("t/a", 6.0, snapshot(1, 1))]))
        .await;
    assert_eq!(gap.status, 409, "{}", gap.body);
    assert!(
        gap.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the server holds 2 of this run"),
        "{}",
        gap.body
    );
    let run = f.get(&format!("/v1/tests/{r}")).await.body;
    assert_eq!(run["snapshots"], 2);
    assert_eq!(run["steps"][0]["summary"]["requests"]["total"], 12);
    // Concurrent retries of one push store it once.
    let three = push(2, &[("t/a", 3.0, snapshot(4, 3))]);
    let (x, y) = tokio::join!(f.post(&path, &three), f.post(&path, &three));
    assert_eq!((x.status, y.status), (200, 200));
    let run = f.get(&format!("/v1/tests/{r}")).await.body;
    assert_eq!(run["snapshots"], 3);
    assert_eq!(run["steps"][0]["summary"]["requests"]["total"], 16);
}

async fn bad_test_run_requests_get_a_clear_4xx(f: &Fixture) {
    let r = create(f, 5).await;
    let cases = [
        ("/v1/tests", "", 400, "send a JSON object"),
        ("/v1/tests", "{", 400, "EOF while parsing"),
        ("/v1/tests", r#"{"name": 3}"#, 400, "invalid type"),
        (
            "/v1/tests",
            r#"{"name": "x", "project_id": 1}"#,
            400,
            "unknown field `project_id`",
        ),
        ("/v1/tests", r#"{"name": " "}"#, 400, "name is empty"),
        (
            "/v1/tests",
            r#"{"name": "x", "duration": -5}"#,
            400,
            "is not a length",
        ),
        (
            &format!("/v1/tests/{r}"),
            r#"{"result_status": 0, "run_status": 2}"#,
            400,
            "not a final status",
        ),
        (
            &format!("/v1/tests/{r}"),
            r#"{"result_status": 2, "run_status": 3}"#,
            400,
            "not a result status",
        ),
        (
            &format!("/v1/tests/{r}"),
            r#"{"result_status": 0, "run_status": 11}"#,
            400,
            "not a run status",
        ),
        (
            &format!("/v1/tests/{r}/metrics"),
            r#"{"first": 0, "snapshots": [{"step": "a", "target": "b", "elapsed_s": 1, "snapshot": {"ok": 1, "started": 1, "interrupted": 0, "response": "!", "service": "", "lag": ""}}]}"#,
            400,
            "snapshots[0]: the response histogram cannot be read",
        ),
        (
            "/v1/tests/999/metrics",
            &push(0, &[]),
            404,
            "there is no job 999",
        ),
        (
            "/v1/tests/abc",
            r#"{"result_status": 0, "run_status": 3}"#,
            400,
            "is not a job id",
        ),
    ];
    for (path, body, status, message) in cases {
        let reply = f.post(path, body).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.body);
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path} {body}: {text}");
    }
    // A job the server runs is no test run to push to.
    let id = f
        .submit("name: j\ntests:\n  - name: t\n    steps:\n      - name: e\n        echo: { text: hi }\n")
        .await;
    let reply = f
        .post(&format!("/v1/tests/{id}/metrics"), &push(0, &[]))
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
}

async fn validate_options_and_validate_token(f: &Fixture) {
    let good = json!({ "options": { "name": "v", "tests": [
        { "name": "t", "steps": [{ "name": "e", "echo": { "text": "hi" } }] }
    ] } });
    let reply = f.post("/v1/validate-options", &good.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({ "name": "v", "tests": 1 }));
    let bad = json!({ "options": { "name": "v", "tests": [] } });
    let reply = f.post("/v1/validate-options", &bad.to_string()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(
        !reply.body["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let reply = f.post("/v1/validate-options", r#"{"options": []}"#).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // validate-token needs no token of its own.
    let ask = |token: &str| json!({ "token": token }).to_string();
    let reply = call(
        f.addr(),
        "POST",
        "/v1/validate-token",
        None,
        ask(&f.token).as_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["is_valid"], true);
    assert_eq!(reply.body["token-info"]["project"], "default");
    let reply = call(
        f.addr(),
        "POST",
        "/v1/validate-token",
        None,
        ask("nope").as_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.body["is_valid"], false);
    assert_eq!(reply.body["message"], "invalid");
    let id = f.store.list_tokens().await.unwrap()[0].id;
    f.store.revoke_token(id, 1).await.unwrap();
    let reply = call(
        f.addr(),
        "POST",
        "/v1/validate-token",
        None,
        ask(&f.token).as_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.body["is_valid"], false);
    assert_eq!(reply.body["message"], "invalid", "not why");
}

async fn test_progress_answers_for_jobs_the_server_runs(f: &Fixture) {
    let id = f
        .submit("name: j\ntests:\n  - name: t\n    targets: { synthetic: { count: 2 } }\n    steps:\n      - name: e\n        echo: { text: hi }\n")
        .await;
    f.wait_for(id, "completed").await;
    let progress = f.get(&format!("/v1/test-progress/{id}")).await;
    assert_eq!(
        progress.body,
        json!({ "run_status": 3, "result_status": 0, "progress": 1.0 })
    );
    let id = f
        .submit("name: s\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 30s }\n")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.get(&format!("/v1/test-progress/{id}")).await.body["run_status"] != 2 {
        assert!(Instant::now() < deadline, "never running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // k6's stop on a job the server runs cancels it.
    assert_eq!(
        f.post(&format!("/v1/tests/{id}/stop"), "").await.status,
        202
    );
    f.wait_for(id, "cancelled").await;
    let progress = f.get(&format!("/v1/test-progress/{id}")).await;
    assert_eq!(progress.body["run_status"], 5);
}

async fn a_user_logs_in_for_a_token_of_their_project(f: &Fixture) {
    let short = stampede_server::create_user(&f.store, "ann", "alpha", "short").await;
    assert!(short.unwrap_err().to_string().contains("at least 8"));
    stampede_server::create_user(&f.store, "ann", "alpha", "correct horse")
        .await
        .unwrap();
    let again = stampede_server::create_user(&f.store, "ann", "beta", "another one").await;
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("a user of that name exists")
    );
    let stored = f.store.user_by_name("ann").await.unwrap().unwrap();
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "{}",
        stored.password_hash
    );
    assert!(!stored.password_hash.contains("correct horse"));

    let login =
        |email: &str, password: &str| json!({ "email": email, "password": password }).to_string();
    for (email, password) in [("ann", "wrong horse"), ("bob", "correct horse"), ("", "")] {
        let body = login(email, password);
        let reply = call(f.addr(), "POST", "/v1/login", None, body.as_bytes(), &[]).await;
        assert_eq!(reply.status, 401, "{email}: {}", reply.body);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("wrong user name or password")
        );
    }
    let body = login("ann", "correct horse");
    let reply = call(f.addr(), "POST", "/v1/login", None, body.as_bytes(), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_string();
    // The token is ann's project's: it sees none of the default project's jobs.
    let id = f
        .submit("name: j\ntests:\n  - name: t\n    steps:\n      - name: e\n        echo: { text: hi }\n")
        .await;
    let theirs = call(
        f.addr(),
        "GET",
        &format!("/v1/jobs/{id}"),
        Some(&token),
        b"",
        &[],
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let ask = json!({ "token": token }).to_string();
    let reply = call(
        f.addr(),
        "POST",
        "/v1/validate-token",
        None,
        ask.as_bytes(),
        &[],
    )
    .await;
    assert_eq!(
        reply.body["token-info"]["project"], "alpha",
        "{}",
        reply.body
    );
    assert!(
        reply.body["token-info"]["name"]
            .as_str()
            .unwrap()
            .starts_with("login-ann-")
    );
}
