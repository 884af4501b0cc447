//! Stall mode against the clock: requests in a window are held to its end, others are not.
//!
//! Times are measured from just before `Server::start`, so the server's own clock lags
//! ours by the start-up time; the margins below allow for that and a loaded machine.

use std::time::{Duration, Instant};

use http::StatusCode;
use stampede_sut::Config;

use crate::client::{H1, start};

const FAST: Duration = Duration::from_millis(100);

/// Sends a GET and returns how long it took and when (after `t0`) it was sent.
async fn timed(t0: Instant, client: &mut H1, path: &str) -> (Duration, Duration) {
    let sent = Instant::now();
    let reply = client.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}");
    (sent.elapsed(), sent.duration_since(t0))
}

#[tokio::test]
async fn requests_in_a_window_wait_for_its_end() {
    let t0 = Instant::now();
    let server = start(Config {
        stall_every: Some(Duration::from_millis(400)),
        stall_for: Duration::from_millis(200),
        ..Config::default()
    });
    let mut client = H1::connect(server.local_addr()).await;
    let at = |ms| tokio::time::sleep_until((t0 + Duration::from_millis(ms)).into());
    at(100).await;
    let (took, _) = timed(t0, &mut client, "/").await;
    assert!(took < FAST, "before the first window: took {took:?}");

    // Window [400ms, 600ms): sent at ~450ms, answered at ~600ms.
    at(450).await;
    let (took, sent_at) = timed(t0, &mut client, "/").await;
    assert!(
        sent_at < Duration::from_millis(550),
        "test too late to check: {sent_at:?}"
    );
    assert!(took >= FAST, "in a window: answered after only {took:?}");
    assert!(took < Duration::from_secs(1), "in a window: took {took:?}");
    assert!(
        sent_at + took >= Duration::from_millis(590),
        "released early"
    );

    // Between windows.
    at(700).await;
    let (took, _) = timed(t0, &mut client, "/").await;
    assert!(took < FAST, "between windows: took {took:?}");

    // A delay that ends inside [1200ms, 1400ms) is held until its end too.
    at(1100).await;
    let (took, sent_at) = timed(t0, &mut client, "/delay/150").await;
    assert!(
        sent_at < Duration::from_millis(1200),
        "test too late to check: {sent_at:?}"
    );
    assert!(
        sent_at + took >= Duration::from_millis(1390),
        "released early: {took:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
