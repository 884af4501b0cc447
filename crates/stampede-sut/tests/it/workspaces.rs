//! The workspace service under `/ws/`: lifecycle, the provisioner pool's waves, autostart,
//! the build stream and its ends, and the 4xx answers to bad input.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use stampede_sut::{Config, Server, SutError, WorkspaceConfig};

use crate::client::start;
use crate::ws_client::{Api, Event, update};

const WAIT: Duration = Duration::from_secs(10);

fn pool(provisioners: usize, build_ms: u64) -> Config {
    Config {
        threads: 2,
        workspaces: WorkspaceConfig {
            provisioners,
            build_time: Duration::from_millis(build_ms),
            ..WorkspaceConfig::default()
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn one_workspace_lives_through_start_stop_start_and_delete() {
    let server = start(pool(2, 50));
    let api = Api::user(server.local_addr(), "alice").await;
    let mut watch = api.watch().await;

    let created = api.create("dev").await;
    assert_eq!(created["name"], "dev");
    assert_eq!(created["owner"], "alice");
    assert_eq!(created["autostart"], Value::Null);
    let first = &created["latest_build"];
    assert_eq!(
        (
            &first["build_number"],
            &first["transition"],
            &first["status"],
            &first["reason"]
        ),
        (
            &json!(1),
            &json!("start"),
            &json!("pending"),
            &json!("initiator")
        )
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(watch.update(WAIT).await.1);
    }
    let (status, got) = api.call("GET", "/ws/workspaces/dev", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["latest_build"]["status"], "succeeded", "{got}");

    for (number, method, path) in [
        (2, "POST", "/ws/workspaces/dev/stop"),
        (3, "POST", "/ws/workspaces/dev/start"),
        (4, "DELETE", "/ws/workspaces/dev"),
    ] {
        let (status, build) = api.call(method, path, None).await;
        assert_eq!(status, StatusCode::CREATED, "{method} {path}: {build}");
        assert_eq!(build["build_number"], number);
        // A second build while one is active is refused.
        let (status, body) = api.call(method, path, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("still")),
            "{body}"
        );
        for _ in 0..3 {
            seen.push(watch.update(WAIT).await.1);
        }
    }
    let mut expected = Vec::new();
    for (number, transition) in [(1, "start"), (2, "stop"), (3, "start"), (4, "delete")] {
        for status in ["pending", "running", "succeeded"] {
            expected.push(update("dev", number, transition, status));
        }
    }
    assert_eq!(seen, expected);
    let (status, _) = api.call("GET", "/ws/workspaces/dev", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted");
    assert!(watch.is_quiet(Duration::from_millis(150)).await);
}

/// Creates `n` workspaces at once on a pool of `p` with build time `b`; the k-th build
/// to finish does so about `(k / p + 1) * b` after the first was queued, and never more
/// than `p` run at once.
async fn check_waves(n: usize, p: usize, b: Duration) {
    let server = start(pool(p, b.as_millis() as u64));
    let api = Api::user(server.local_addr(), "herd").await;
    let mut watch = api.watch().await;
    let creates: Vec<_> = (0..n)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move { api.create(&format!("scaletest-{i}")).await })
        })
        .collect();
    for create in creates {
        create.await.expect("create task");
    }
    let (mut first_queued, mut done) = (None, Vec::new());
    let (mut running, mut most_running) = (HashSet::new(), 0);
    let mut each: HashMap<String, Vec<Value>> = HashMap::new();
    while done.len() < n {
        let (at, value) = watch.update(WAIT).await;
        let name = value["workspace_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let statuses = each.entry(name.clone()).or_default();
        statuses.push(value["status"].clone());
        match value["status"].as_str() {
            Some("pending") => {
                first_queued.get_or_insert(at);
            }
            Some("running") => {
                running.insert(name);
                most_running = most_running.max(running.len());
            }
            Some("succeeded") => {
                running.remove(&name);
                done.push(at);
            }
            other => panic!("unexpected status {other:?} in {value}"),
        }
    }
    assert_eq!(most_running, p.min(n), "builds at once on a pool of {p}");
    assert_eq!(each.len(), n);
    for (name, statuses) in each {
        assert_eq!(statuses, ["pending", "running", "succeeded"], "{name}");
    }
    let start = first_queued.expect("a pending update first");
    let tolerance = b / 2;
    for (k, at) in done.iter().enumerate() {
        let expected = b * (k / p + 1) as u32;
        let got = at.duration_since(start);
        assert!(
            got + Duration::from_millis(5) >= expected && got <= expected + tolerance,
            "N={n} P={p} B={b:?}: build #{k} finished after {got:?}, expected {expected:?} (+{tolerance:?})"
        );
    }
}

#[tokio::test]
async fn builds_finish_in_waves_of_the_pool_size() {
    check_waves(6, 2, Duration::from_millis(150)).await;
    check_waves(9, 4, Duration::from_millis(100)).await;
    check_waves(3, 8, Duration::from_millis(120)).await;
}

/// Creates `name` and stops it, reading its six updates from `watch`.
async fn stopped(api: &Api, watch: &mut crate::ws_client::Watch, name: &str) {
    api.create(name).await;
    for _ in 0..3 {
        watch.update(WAIT).await;
    }
    let (status, body) = api
        .call("POST", &format!("/ws/workspaces/{name}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for _ in 0..3 {
        watch.update(WAIT).await;
    }
}

#[tokio::test]
async fn autostart_at_an_instant_fires_once_and_on_time() {
    let server = start(pool(4, 50));
    let api = Api::user(server.local_addr(), "bob").await;
    let mut watch = api.watch().await;
    stopped(&api, &mut watch, "sleepy").await;

    let text = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_millis(700))
        .to_string();
    // The instant the server is given is the one in the text, cut to the
    // millisecond: lateness counts from there, not from a finer clock reading.
    let at = humantime::parse_rfc3339(&text).expect("an RFC 3339 instant");
    let schedule = json!({ "schedule": text });
    let (status, body) = api
        .call("PUT", "/ws/workspaces/sleepy/autostart", Some(&schedule))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["autostart"], json!(text));

    let (_, queued) = watch.update(WAIT).await;
    let late = SystemTime::now().duration_since(at);
    assert!(
        late.as_ref()
            .is_ok_and(|late| *late < Duration::from_millis(300)),
        "fired {late:?} after {text}"
    );
    assert_eq!(queued, update("sleepy", 3, "start", "pending"));
    assert_eq!(
        watch.update(WAIT).await.1,
        update("sleepy", 3, "start", "running")
    );
    assert_eq!(
        watch.update(WAIT).await.1,
        update("sleepy", 3, "start", "succeeded")
    );
    let (_, got) = api.call("GET", "/ws/workspaces/sleepy", None).await;
    assert_eq!(got["latest_build"]["reason"], "autostart", "{got}");
    assert_eq!(
        got["autostart"],
        Value::Null,
        "a one-off schedule is spent: {got}"
    );

    // Stopped again, it stays stopped: the instant fired once.
    api.call("POST", "/ws/workspaces/sleepy/stop", None).await;
    for _ in 0..3 {
        watch.update(WAIT).await;
    }
    assert!(watch.is_quiet(Duration::from_millis(800)).await);
}

#[tokio::test]
async fn autostart_skips_a_running_workspace_and_keeps_cron_schedules() {
    let server = start(pool(4, 50));
    let api = Api::user(server.local_addr(), "carol").await;
    let mut watch = api.watch().await;
    api.create("busy").await;
    for _ in 0..3 {
        watch.update(WAIT).await;
    }
    let soon = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_millis(200));
    let (status, _) = api
        .call(
            "PUT",
            "/ws/workspaces/busy/autostart",
            Some(&json!({ "schedule": soon.to_string() })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        watch.is_quiet(Duration::from_millis(500)).await,
        "started while running"
    );

    let cron = json!({ "schedule": "CRON_TZ=UTC 30 9 * * *" });
    let (status, body) = api
        .call("PUT", "/ws/workspaces/busy/autostart", Some(&cron))
        .await;
    assert_eq!(
        (status, &body["autostart"]),
        (StatusCode::OK, &cron["schedule"]),
        "{body}"
    );
    let clear = json!({ "schedule": null });
    let (status, body) = api
        .call("PUT", "/ws/workspaces/busy/autostart", Some(&clear))
        .await;
    assert_eq!(
        (status, &body["autostart"]),
        (StatusCode::OK, &Value::Null),
        "{body}"
    );
}

#[tokio::test]
async fn a_schedule_dies_with_its_workspace() {
    let server = start(pool(4, 30));
    let api = Api::user(server.local_addr(), "erin").await;
    let mut watch = api.watch().await;
    stopped(&api, &mut watch, "again").await;
    let at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_millis(900));
    let schedule = json!({ "schedule": at.to_string() });
    let path = "/ws/workspaces/again/autostart";
    assert_eq!(
        api.call("PUT", path, Some(&schedule)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.call("DELETE", "/ws/workspaces/again", None).await.0,
        StatusCode::CREATED
    );
    for _ in 0..3 {
        watch.update(WAIT).await;
    }
    // Made again under the same name, stopped, with a schedule of its own.
    stopped(&api, &mut watch, "again").await;
    let cron = json!({ "schedule": "CRON_TZ=UTC 0 0 * * *" });
    assert_eq!(api.call("PUT", path, Some(&cron)).await.0, StatusCode::OK);
    assert!(
        watch.is_quiet(Duration::from_millis(1200)).await,
        "the old instant fired"
    );
}

#[tokio::test]
async fn the_stream_ends_cleanly_when_closed_by_the_admin_endpoint_or_at_shutdown() {
    let server = start(pool(4, 20));
    let api = Api::user(server.local_addr(), "dave").await;
    let (mut one, mut two) = (api.watch().await, api.watch().await);
    let (status, body) = api.call("POST", "/ws/admin/close-streams", None).await;
    assert_eq!(
        (status, &body["closed"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    for watch in [&mut one, &mut two] {
        assert!(matches!(watch.next(WAIT).await, Event::End));
    }

    let mut three = api.watch().await;
    api.create("last").await;
    assert_eq!(
        three.update(WAIT).await.1,
        update("last", 1, "start", "pending")
    );
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .expect("shutdown");
    loop {
        match three.next(WAIT).await {
            Event::Update(..) => {}
            Event::End => break,
            Event::Broken(why) => panic!("the stream broke instead of ending: {why}"),
        }
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let server = start(pool(1, 10));
    let addr = server.local_addr();
    let alice = Api::user(addr, "alice").await;
    let eve = Api::user(addr, "eve").await;
    alice.create("mine").await;
    let anonymous = Api::anonymous(addr);
    let forged = Api {
        addr,
        token: Some("0123".to_owned()),
    };

    let check = async |api: &Api, method: &str, path: &str, body: &str, status: u16, says: &str| {
        let (got, answer) = api.raw(method, path, Bytes::from(body.to_owned())).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(got.as_u16(), status, "{method} {path} {body}: {answer}");
        assert!(
            error.contains(says),
            "{method} {path} {body}: {error:?} lacks {says:?}"
        );
    };
    let user = r#"{"name": "alice", "password": "x"}"#;
    check(&anonymous, "POST", "/ws/users", user, 409, "already exists").await;
    check(
        &anonymous,
        "POST",
        "/ws/users",
        r#"{"name": "a b", "password": "x"}"#,
        400,
        "user name",
    )
    .await;
    check(
        &anonymous,
        "POST",
        "/ws/users",
        r#"{"name": "x"}"#,
        400,
        "password",
    )
    .await;
    check(
        &anonymous,
        "POST",
        "/ws/login",
        user,
        401,
        "wrong user name or password",
    )
    .await;
    check(
        &anonymous,
        "GET",
        "/ws/workspaces/mine",
        "",
        401,
        "no session token",
    )
    .await;
    check(
        &anonymous,
        "GET",
        "/ws/builds/watch",
        "",
        401,
        "no session token",
    )
    .await;
    check(
        &forged,
        "GET",
        "/ws/workspaces/mine",
        "",
        401,
        "unknown session token",
    )
    .await;
    check(
        &alice,
        "GET",
        "/ws/workspaces/nope",
        "",
        404,
        "no workspace named \"nope\"",
    )
    .await;
    check(
        &eve,
        "GET",
        "/ws/workspaces/mine",
        "",
        404,
        "no workspace named \"mine\"",
    )
    .await;
    check(&alice, "POST", "/ws/workspaces/nope/stop", "", 404, "nope").await;
    check(
        &alice,
        "POST",
        "/ws/workspaces",
        r#"{"name": "mine"}"#,
        409,
        "already exists",
    )
    .await;
    check(
        &alice,
        "POST",
        "/ws/workspaces",
        "{",
        400,
        "not the JSON expected",
    )
    .await;
    check(
        &alice,
        "PUT",
        "/ws/workspaces/mine",
        "",
        405,
        "takes GET, DELETE",
    )
    .await;
    check(
        &alice,
        "GET",
        "/ws/teapots",
        "",
        404,
        "no endpoint GET /ws/teapots",
    )
    .await;
    let autostart = "/ws/workspaces/mine/autostart";
    for (schedule, says) in [
        ("CRON_TZ=UTC 61 9 * * *", "minute \"61\""),
        ("CRON_TZ=Asia/Tokyo 0 9 * * *", "only UTC"),
        ("tomorrow", "RFC 3339"),
        ("2001-01-01T00:00:00Z", "in the past"),
    ] {
        let body = json!({ "schedule": schedule }).to_string();
        check(&alice, "PUT", autostart, &body, 400, says).await;
    }
    check(
        &alice,
        "PUT",
        "/ws/workspaces/nope/autostart",
        r#"{"schedule": null}"#,
        404,
        "nope",
    )
    .await;
}

#[tokio::test]
async fn a_seeded_failure_rate_fails_the_same_builds_every_time() {
    async fn statuses(seed: u64) -> Vec<String> {
        let mut config = pool(1, 0);
        config.workspaces.failure_rate = 0.5;
        config.workspaces.seed = seed;
        let server = start(config);
        let api = Api::user(server.local_addr(), "frank").await;
        let mut watch = api.watch().await;
        let mut out = Vec::new();
        for i in 0..12 {
            api.create(&format!("w{i}")).await;
            for _ in 0..3 {
                let (_, value) = watch.update(WAIT).await;
                if let Some(s @ ("succeeded" | "failed")) = value["status"].as_str() {
                    out.push(s.to_owned());
                }
            }
        }
        out
    }
    let first = statuses(42).await;
    assert_eq!(first, statuses(42).await);
    assert!(first.contains(&"failed".to_owned()) && first.contains(&"succeeded".to_owned()));
}

#[test]
fn workspace_config_errors_name_the_field() {
    let mut config = pool(0, 100);
    match Server::start(config.clone()) {
        Err(SutError::InvalidConfig { field, reason }) => {
            assert_eq!(field, "workspaces.provisioners");
            assert!(reason.contains("1 to"), "{reason}");
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
    config.workspaces.provisioners = 1;
    config.workspaces.failure_rate = 2.0;
    let err = Server::start(config).expect_err("rate above 1").to_string();
    assert!(
        err.contains("workspaces.failure_rate") && err.contains("1.0"),
        "{err}"
    );
}
