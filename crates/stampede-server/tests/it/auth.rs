//! Logins, tokens and who a token speaks for: login tokens expire, `validate-token` tells
//! nothing about why a token is invalid, logins are rate-limited per address and per user
//! name and password checks are bounded, the requestor is the token's identity, and
//! `/metrics` shows a token its own project only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use stampede_core::ManualClock;
use stampede_server::{HttpLimits, LoginLimits, Rate, Server, create_token};

use super::fixture::start_with;
use super::{Fixture, QUICK, Reply, call, call_on, on_every_backend};

on_every_backend!(
    login_tokens_expire_and_validate_token_says_only_invalid,
    logins_are_limited_per_address_and_per_user_name,
    password_checks_beyond_the_pool_and_its_queue_get_429,
    the_requestor_is_the_tokens_identity,
    metrics_show_a_token_its_own_projects_jobs,
);

const PASSWORD: &str = "correct horse";

/// A server over the fixture's store on `clock` with `login` limits.
async fn server(f: &Fixture, clock: Arc<ManualClock>, login: LoginLimits) -> Server {
    start_with(&f.store, clock, HttpLimits::default(), login).await
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

/// Limits that never get in the way, but for what a test sets.
fn loose() -> LoginLimits {
    let rate = Rate {
        burst: 1000,
        every: Duration::from_millis(1),
        free_failures: 1000,
        max_backoff: Duration::from_secs(1),
    };
    LoginLimits {
        per_address: rate,
        per_user: rate,
        ..LoginLimits::default()
    }
}

/// `POST /v1/login` as `user` from 127.0.0.`from`.
async fn login(addr: SocketAddr, from: u8, user: &str, password: &str) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, from)),
            0,
        ))
        .unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let body = json!({ "email": user, "password": password }).to_string();
    call_on(stream, "POST", "/v1/login", None, body.as_bytes(), &[]).await
}

async fn validate(addr: SocketAddr, token: &str) -> Value {
    let body = json!({ "token": token }).to_string();
    let reply = call(
        addr,
        "POST",
        "/v1/validate-token",
        None,
        body.as_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn login_tokens_expire_and_validate_token_says_only_invalid(f: &Fixture) {
    stampede_server::create_user(&f.store, "ann", "default", PASSWORD)
        .await
        .unwrap();
    let clock = manual_clock();
    let server = server(
        f,
        clock.clone(),
        LoginLimits {
            token_ttl: Duration::from_secs(3600),
            ..loose()
        },
    )
    .await;
    let addr = server.addr();
    let reply = login(addr, 1, "ann", PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_string();
    let version = |token: String| async move {
        call(addr, "GET", "/v1/version", Some(&token), b"", &[]).await
    };
    assert_eq!(version(token.clone()).await.status, 200);
    assert_eq!(validate(addr, &token).await["is_valid"], true);

    clock.advance(Duration::from_secs(3599));
    assert_eq!(version(token.clone()).await.status, 200, "a second to go");
    clock.advance(Duration::from_secs(1));
    let refused = version(token.clone()).await;
    assert_eq!(refused.status, 401, "expired: {}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("log in again"), "{message}");

    // Unknown, revoked and expired: one answer, which says nothing of why.
    let revoked = create_token(&f.store, "gone", "default").await.unwrap();
    let listed = f.store.list_tokens().await.unwrap();
    let id = listed.iter().find(|t| t.name == "gone").unwrap().id;
    assert!(f.store.revoke_token(id, 1).await.unwrap());
    let expected = json!({ "is_valid": false, "message": "invalid", "token-info": null });
    for (what, token) in [
        ("expired", token.as_str()),
        ("revoked", &revoked),
        ("unknown", "nope"),
    ] {
        let answer = validate(addr, token).await;
        let answer = json!({
            "is_valid": answer["is_valid"],
            "message": answer["message"],
            "token-info": answer["token-info"],
        });
        assert_eq!(answer, expected, "{what}");
    }
    server.shutdown().await;
}

async fn logins_are_limited_per_address_and_per_user_name(f: &Fixture) {
    for name in ["ann", "bob"] {
        stampede_server::create_user(&f.store, name, "default", PASSWORD)
            .await
            .unwrap();
    }
    let clock = manual_clock();
    let limits = LoginLimits {
        per_address: Rate {
            burst: 6,
            every: Duration::from_secs(3600),
            free_failures: 100,
            max_backoff: Duration::from_secs(60),
        },
        per_user: Rate {
            burst: 100,
            every: Duration::from_secs(1),
            free_failures: 1,
            max_backoff: Duration::from_secs(60),
        },
        ..loose()
    };
    let server = server(f, clock.clone(), limits).await;
    let addr = server.addr();
    let steps = [
        // (from 127.0.0.x, user, password, status, what the message says)
        (2, "ann", "wrong one", 401, "wrong user name or password"),
        (2, "ann", "wrong two", 401, "wrong user name or password"),
        (
            3,
            "ann",
            PASSWORD,
            429,
            "too many logins for this user name",
        ),
        (2, "bob", PASSWORD, 200, ""),
    ];
    let check = async |steps: &[(u8, &str, &str, u16, &str)]| {
        for &(from, user, password, status, says) in steps {
            let reply = login(addr, from, user, password).await;
            assert_eq!(reply.status, status, "{user} from .{from}: {}", reply.body);
            let message = reply.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{user}: {message}");
            if status == 429 {
                assert!(reply.retry_after.is_some_and(|s| s >= 1), "Retry-After");
            }
        }
    };
    check(&steps).await;
    // The wait after ann's second failure is over after a second.
    clock.advance(Duration::from_secs(2));
    check(&[
        (2, "ann", PASSWORD, 200, ""),
        (2, "bob", PASSWORD, 200, ""),
        (2, "ann", PASSWORD, 200, ""),
        // Six attempts from 127.0.0.2: the seventh waits for the next hour's.
        (2, "bob", PASSWORD, 429, "too many logins from 127.0.0.2"),
        (4, "bob", PASSWORD, 200, ""),
    ])
    .await;
    server.shutdown().await;
}

async fn password_checks_beyond_the_pool_and_its_queue_get_429(f: &Fixture) {
    stampede_server::create_user(&f.store, "ann", "default", PASSWORD)
        .await
        .unwrap();
    let limits = LoginLimits {
        concurrency: 1,
        queue: 1,
        max_wait: Duration::from_secs(30),
        ..loose()
    };
    let server = server(f, manual_clock(), limits).await;
    let addr = server.addr();
    // Twelve clients on addresses of their own, each with a name of its own: only the pool
    // stands between them and twelve Argon2 buffers at once.
    let logins = (0..12u8).map(|n| async move {
        let user = if n == 0 {
            "ann".to_string()
        } else {
            format!("nobody-{n}")
        };
        login(addr, 10 + n, &user, PASSWORD).await
    });
    let replies = futures_util::future::join_all(logins).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        busy.len() >= 8,
        "one check runs, one waits, the rest are turned away: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 401, 429].contains(s)),
        "{statuses:?}"
    );
    for reply in busy {
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("checking as many passwords"), "{message}");
        assert_eq!(reply.retry_after, Some(1));
    }
    // Once they are done, a login goes through.
    let reply = login(addr, 9, "ann", PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.shutdown().await;
}

async fn the_requestor_is_the_tokens_identity(f: &Fixture) {
    stampede_server::create_user(&f.store, "ann", "default", PASSWORD)
        .await
        .unwrap();
    let server = server(f, manual_clock(), loose()).await;
    let addr = server.addr();
    let ci = create_token(&f.store, "ci", "default").await.unwrap();
    let reply = login(addr, 1, "ann", PASSWORD).await;
    let ann = reply.body["token"].as_str().unwrap().to_string();
    let post = async |token: &str, path: &str, body: &str| {
        call(addr, "POST", path, Some(token), body.as_bytes(), &[]).await
    };

    for path in ["/v1/jobs?requestor=bob", "/v1/jobs/1/retry?requestor=bob"] {
        let refused = post(&ci, path, QUICK).await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.body);
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the requestor now comes from the token")
                && message.contains("\"ci\""),
            "{message}"
        );
    }
    let created = post(&ci, "/v1/jobs", QUICK).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["job_id"].as_u64().unwrap();
    let created = post(&ann, "/v1/jobs", QUICK).await;
    assert_eq!(created.status, 201, "{}", created.body);
    // ann retries ci's job once it ended: the new job is ann's.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let retried = post(&ann, &format!("/v1/jobs/{id}/retry"), "").await;
        if retried.status == 201 {
            break;
        }
        assert_eq!(retried.status, 409, "{}", retried.body);
        assert!(std::time::Instant::now() < deadline, "never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = call(addr, "GET", "/v1/jobs", Some(&ci), b"", &[]).await;
    let requestors: Vec<&str> = list.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["requestor"].as_str().unwrap())
        .collect();
    assert_eq!(requestors, ["ci", "ann", "ann"]);
    server.shutdown().await;
}

/// The `stampede_jobs` samples of a scrape with `token`: `(labels, count)`.
async fn job_counts(f: &Fixture, token: &str) -> Vec<(String, f64)> {
    let reply = call(f.addr(), "GET", "/metrics", Some(token), b"", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("stampede_jobs{"))
        .map(|l| {
            let (labels, value) = l.rsplit_once(' ').unwrap();
            (labels.to_string(), value.parse().unwrap())
        })
        .filter(|(_, count)| *count > 0.0)
        .collect()
}

async fn metrics_show_a_token_its_own_projects_jobs(f: &Fixture) {
    let first = f.submit(QUICK).await;
    let second = f.submit(QUICK).await;
    f.wait_for(first, "completed").await;
    f.wait_for(second, "completed").await;
    let beta = create_token(&f.store, "beta-ci", "beta").await.unwrap();
    let created = call(
        f.addr(),
        "POST",
        "/v1/jobs",
        Some(&beta),
        QUICK.as_bytes(),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["job_id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while job_counts(f, &beta).await != [(r#"project="beta",state="completed"}"#.to_string(), 1.0)]
    {
        assert!(
            std::time::Instant::now() < deadline,
            "job {id}: {:?}",
            job_counts(f, &beta).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        job_counts(f, &f.token).await,
        [(r#"project="default",state="completed"}"#.to_string(), 2.0)]
    );
}
