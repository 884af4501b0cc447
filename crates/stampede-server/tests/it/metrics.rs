//! `GET /metrics`: request counters and durations, and jobs by state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Fixture, QUICK, SLOW, call, on_every_backend};

on_every_backend!(
    requests_are_counted_and_timed_by_route_and_status,
    jobs_are_counted_by_state,
);

/// Every sample of a scrape, by `name{labels}` as written.
async fn scrape(f: &Fixture) -> HashMap<String, f64> {
    let reply = f.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        reply.content_type
    );
    let text = reply.body.as_str().unwrap().to_string();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn requests_are_counted_and_timed_by_route_and_status(f: &Fixture) {
    let unauthorized = call(f.addr(), "GET", "/metrics", None, b"", &[]).await;
    assert_eq!(unauthorized.status, 401);
    let before = scrape(f).await;
    for _ in 0..3 {
        assert_eq!(f.get("/v1/version").await.status, 200);
    }
    assert_eq!(f.get("/v1/jobs/999").await.status, 404);
    assert_eq!(f.get("/v1/nothing").await.status, 404);
    let after = scrape(f).await;
    let grew = |series: &str| value(&after, series) - value(&before, series);
    let cases = [
        (
            r#"stampede_http_requests_total{route="/v1/version",status="200"}"#,
            3.0,
        ),
        (
            r#"stampede_http_requests_total{route="/v1/jobs/{id}",status="404"}"#,
            1.0,
        ),
        (
            r#"stampede_http_requests_total{route="unmatched",status="404"}"#,
            1.0,
        ),
        // The first scrape is counted once it was answered.
        (
            r#"stampede_http_requests_total{route="/metrics",status="200"}"#,
            1.0,
        ),
        (
            r#"stampede_http_request_duration_seconds_count{route="/v1/version"}"#,
            3.0,
        ),
        (
            r#"stampede_http_request_duration_seconds_bucket{le="+Inf",route="/v1/version"}"#,
            3.0,
        ),
    ];
    for (series, expected) in cases {
        assert_eq!(grew(series), expected, "{series} in {after:#?}");
    }
    assert_eq!(
        value(
            &after,
            r#"stampede_http_requests_total{route="/metrics",status="401"}"#
        ),
        1.0
    );
    let sum = value(
        &after,
        r#"stampede_http_request_duration_seconds_sum{route="/v1/version"}"#,
    );
    assert!(sum > 0.0 && sum < 30.0, "{sum}");
}

async fn jobs_are_counted_by_state(f: &Fixture) {
    let completed = f.submit(QUICK).await;
    f.wait_for(completed, "completed").await;
    let cancelled = f.submit(SLOW).await;
    f.wait_for(cancelled, "started").await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{cancelled}/cancel"), "")
            .await
            .status,
        202
    );
    f.wait_for(cancelled, "cancelled").await;
    let running = f.submit(SLOW).await;
    f.wait_for(running, "started").await;

    let expected = [
        ("completed", 1.0),
        ("cancelled", 1.0),
        ("started", 1.0),
        ("failed", 0.0),
        ("paused", 0.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(f).await;
        let counts: Vec<_> = expected
            .iter()
            .map(|(state, _)| {
                value(
                    &samples,
                    &format!(r#"stampede_jobs{{project="default",state="{state}"}}"#),
                )
            })
            .collect();
        if counts.iter().zip(&expected).all(|(c, (_, e))| c == e) {
            // Every state is reported, even at zero.
            assert!(
                samples.contains_key(
                    r#"stampede_jobs{project="default",state="cancellation-failed"}"#
                )
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs by state: {counts:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        f.post(&format!("/v1/jobs/{running}/cancel"), "")
            .await
            .status,
        202
    );
    f.wait_for(running, "cancelled").await;
}
