//! k6's retry policy against scripted servers: 3 attempts, 500 ms apart, on network errors,
//! 5xx and 429, never on another 4xx, one idempotency key per logical request.

use std::time::{Duration, Instant};

use stampede_client::{Client, ClientConfig, ClientError};

use crate::fake::{Answer, CREATED, Fake, envelope};

fn client(url: &str, retry_interval: Duration, timeout: Duration) -> Client {
    Client::new(ClientConfig {
        server: url.to_string(),
        token: Some("secret".into()),
        timeout,
        attempts: 3,
        retry_interval,
    })
    .unwrap()
}

/// Two failures of the kind `first`, then 201: the submit succeeds on the third attempt,
/// the attempts are 500 ms apart, and all three carry one idempotency key.
async fn check_retried(first: Answer) {
    let fake = Fake::start(vec![first, first, Answer::Reply(201, CREATED)]).await;
    let client = client(
        &fake.url(),
        Duration::from_millis(500),
        Duration::from_secs(5),
    );
    let created = client.submit("name: quick\n").await.unwrap();
    assert_eq!((created.job_id, created.created), (7, true));
    let seen = fake.seen();
    assert_eq!(seen.len(), 3, "{first:?}: {seen:?}");
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(490) && gap < Duration::from_millis(900),
            "{first:?}: attempts {gap:?} apart"
        );
    }
    let key = seen[0]
        .idempotency_key
        .clone()
        .expect("a POST carries a key");
    assert_eq!(key.len(), 16);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    for request in &seen {
        assert_eq!(request.idempotency_key.as_deref(), Some(key.as_str()));
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/v1/jobs")
        );
        assert_eq!(request.authorization.as_deref(), Some("Token secret"));
        assert_eq!(request.body, "name: quick\n");
    }
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_key() {
    check_retried(Answer::Reply(503, envelope(503))).await;
}

#[tokio::test]
async fn a_429_is_retried_with_the_same_key() {
    check_retried(Answer::Reply(429, envelope(429))).await;
}

#[tokio::test]
async fn a_dropped_connection_is_retried_with_the_same_key() {
    check_retried(Answer::Close).await;
}

#[tokio::test]
async fn three_5xx_give_the_last_answer_as_an_api_error() {
    let busy = Answer::Reply(503, envelope(503));
    let fake = Fake::start(vec![busy, busy, busy, Answer::Reply(201, CREATED)]).await;
    let client = client(
        &fake.url(),
        Duration::from_millis(20),
        Duration::from_secs(5),
    );
    let error = client.status(7).await.unwrap_err();
    assert_eq!(error.to_string(), "(503) busy; try again");
    assert!(matches!(error, ClientError::Api { status: 503, .. }));
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn other_4xx_are_never_retried() {
    for status in [400, 401, 403, 404, 409, 413, 422] {
        let fake = Fake::start(vec![Answer::Reply(status, envelope(400)); 3]).await;
        let client = client(
            &fake.url(),
            Duration::from_millis(20),
            Duration::from_secs(5),
        );
        let error = client.cancel(7).await.unwrap_err();
        assert!(
            matches!(error, ClientError::Api { status: s, .. } if s == status),
            "{status}: {error:?}"
        );
        assert_eq!(fake.seen().len(), 1, "{status} was retried");
    }
}

#[tokio::test]
async fn a_refused_connection_gives_a_network_error_after_3_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client(&url, Duration::from_millis(100), Duration::from_secs(5));
    let started = Instant::now();
    let error = client.version().await.unwrap_err();
    let elapsed = started.elapsed();
    let ClientError::Network { attempts, last, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(last.contains("cannot connect"), "{last}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "could not reach the server at {url} after 3 attempts: "
        )),
        "{message}"
    );
    assert!(
        elapsed >= Duration::from_millis(190),
        "two pauses between three attempts: {elapsed:?}"
    );
}

#[tokio::test]
async fn an_attempt_that_takes_too_long_is_cut_off_and_retried() {
    let fake = Fake::start(vec![Answer::Hang; 3]).await;
    let client = client(
        &fake.url(),
        Duration::from_millis(50),
        Duration::from_millis(200),
    );
    let started = Instant::now();
    let error = client.pause(7).await.unwrap_err();
    let elapsed = started.elapsed();
    let ClientError::Network { attempts, last, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!((*attempts, last.as_str()), (3, "no answer within 200ms"));
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn each_logical_post_has_its_own_key_and_a_get_has_none() {
    let fake = Fake::start(vec![
        Answer::Reply(201, CREATED),
        Answer::Reply(201, CREATED),
        Answer::Reply(202, ""),
        Answer::Reply(200, r#"{"jobs": []}"#),
    ])
    .await;
    let client = client(
        &fake.url(),
        Duration::from_millis(20),
        Duration::from_secs(5),
    );
    client.submit("name: a\n").await.unwrap();
    client.submit("name: a\n").await.unwrap();
    client.resume(7).await.unwrap();
    let list = client
        .list(
            &["failed".into(), "cancelled".into()],
            &["a b".into()],
            Some(3),
            Some(10),
        )
        .await
        .unwrap();
    assert!(list.jobs.is_empty());
    let seen = fake.seen();
    let keys: Vec<_> = seen.iter().map(|s| s.idempotency_key.clone()).collect();
    assert!(keys[0].is_some() && keys[1].is_some() && keys[2].is_some());
    assert_ne!(keys[0], keys[1]);
    assert_ne!(keys[1], keys[2]);
    assert_eq!(keys[3], None);
    assert_eq!(seen[2].path, "/v1/jobs/7/resume");
    assert_eq!(
        seen[3].path,
        "/v1/jobs?state=failed%2Ccancelled&tag=a+b&after=3&limit=10"
    );
}

#[tokio::test]
async fn odd_answers_become_errors_not_panics() {
    let fake = Fake::start(vec![
        Answer::Reply(200, "not json"),
        Answer::Reply(200, r#"{"jobs": "many"}"#),
        Answer::Reply(400, "Failed to deserialize query string"),
        Answer::Reply(401, ""),
        Answer::Reply(
            422,
            r#"{"error": {"code": 422, "message": "the descriptor is invalid", "details": {"problems": ["a: bad", "b: worse"]}, "field_errors": {"name": ["missing"], "problems": ["a: bad"]}}}"#,
        ),
    ])
    .await;
    let client = client(
        &fake.url(),
        Duration::from_millis(20),
        Duration::from_secs(5),
    );
    let url = fake.url();
    let version = client.version().await.unwrap_err();
    assert!(
        matches!(&version, ClientError::Decode { what, .. } if what == "GET /v1/version"),
        "{version:?}"
    );
    let list = client.list(&[], &[], None, None).await.unwrap_err();
    assert!(
        list.to_string()
            .starts_with("cannot read the server's answer to GET /v1/jobs: invalid type"),
        "{list}"
    );
    let cases = [
        (
            client.events(7, Some(1), None).await.unwrap_err(),
            format!(
                "(400) unexpected HTTP error from {url}/v1/jobs/7/events?after=1: 400 Bad Request: Failed to deserialize query string"
            ),
        ),
        (
            client.status(7).await.unwrap_err(),
            format!(
                "(401) failed to authenticate with the server at {url}: check the token (STAMPEDE_TOKEN or `stampede login`)"
            ),
        ),
        (
            client.submit("name: x\n").await.unwrap_err(),
            "(422) the descriptor is invalid\n  name: missing\n  problems: a: bad, b: worse"
                .to_string(),
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error.to_string(), expected);
    }
}

#[tokio::test]
async fn a_server_without_retry_answers_a_plain_404() {
    let fake = Fake::start(vec![Answer::Reply(
        404,
        r#"{"error": {"code": 404, "message": "no such endpoint; the API is under /v1"}}"#,
    )])
    .await;
    let client = client(
        &fake.url(),
        Duration::from_millis(20),
        Duration::from_secs(5),
    );
    let error = client.retry(7).await.unwrap_err();
    assert_eq!(
        error,
        ClientError::Api {
            status: 404,
            message: "no such endpoint; the API is under /v1".into(),
            details: Default::default(),
        }
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/jobs/7/retry")
    );
    assert!(seen[0].idempotency_key.is_some());
}

#[tokio::test]
async fn a_path_in_the_server_url_prefixes_every_call() {
    let fake = Fake::start(vec![Answer::Reply(
        200,
        r#"{"version": "0.1.0", "api": "v1", "server_id": "s"}"#,
    )])
    .await;
    let client = client(
        &format!("{}/jobs-api/", fake.url()),
        Duration::from_millis(20),
        Duration::from_secs(5),
    );
    assert_eq!(client.version().await.unwrap().server_id, "s");
    assert_eq!(fake.seen()[0].path, "/jobs-api/v1/version");
}
