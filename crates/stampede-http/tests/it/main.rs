//! The HTTP action against the real built-in server: every outcome kind, both protocols,
//! plain and TLS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use stampede_core::{Failure, Outcome};
use stampede_engine::{Action, CallCtx};
use stampede_http::{Checks, HttpAction, HttpPlan, RequestSpec};
use stampede_sut::{Config, Server};
use tokio_util::sync::CancellationToken;

fn request(url: &str) -> RequestSpec {
    RequestSpec {
        url: url.to_string(),
        method: "GET".into(),
        headers: vec![],
        body: Bytes::new(),
        checks: Checks::default(),
    }
}

/// Calls `spec` `times` times over one connection on a fresh current-thread runtime.
fn call(spec: RequestSpec, times: usize, timeout: Duration, http2: bool) -> Vec<Outcome> {
    let plan = HttpPlan::new(&[spec], timeout, http2, true).expect("a valid request");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let action = HttpAction::new(plan, 1);
        let mut outcomes = Vec::new();
        for _ in 0..times {
            let ctx = CallCtx {
                intended: Instant::now(),
                abort: CancellationToken::new(),
            };
            let completion = action.call(ctx).await;
            outcomes.push(completion.outcome);
        }
        outcomes
    })
}

fn sut(tls: bool) -> Server {
    Server::start(Config {
        tls,
        threads: 1,
        ..Config::default()
    })
    .expect("the SUT starts")
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn keep_alive_requests_succeed_over_one_connection() {
    let server = sut(false);
    let outcomes = call(request(&format!("{}/", server.url())), 200, SECOND, false);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

#[test]
fn each_failure_has_its_kind() {
    let server = sut(false);
    let url = server.url();
    let check = |spec: RequestSpec, timeout: Duration, want: Outcome| {
        let got = call(spec.clone(), 2, timeout, false);
        assert_eq!(got, vec![want, want], "{}", spec.url);
    };
    check(
        request(&format!("{url}/status/503")),
        SECOND,
        Err(Failure::Status(503)),
    );
    check(
        request(&format!("{url}/delay/1000")),
        Duration::from_millis(100),
        Err(Failure::Timeout),
    );
    check(
        request("http://127.0.0.1:9/"),
        SECOND,
        Err(Failure::Connect),
    );
    let mut wrong_body = request(&format!("{url}/"));
    wrong_body.checks.body_contains = Some("not there".into());
    check(wrong_body, SECOND, Err(Failure::Check));
    let mut accepted = request(&format!("{url}/status/404"));
    accepted.checks.status = vec![404];
    check(accepted, SECOND, Ok(()));
}

#[test]
fn bodies_go_out_and_come_back() {
    let server = sut(false);
    let mut echo = request(&format!("{}/echo", server.url()));
    echo.method = "POST".into();
    echo.body = Bytes::from_static(b"the quick brown fox");
    echo.checks.body_contains = Some("brown fox".into());
    assert_eq!(call(echo, 3, SECOND, false), vec![Ok(()); 3]);
    let mut big = request(&format!("{}/bytes/1000000", server.url()));
    big.checks.body_contains = Some("".into());
    assert_eq!(call(big, 2, SECOND * 5, false), vec![Ok(()); 2]);
}

#[test]
fn http2_cleartext_and_over_tls() {
    let plain = sut(false);
    let mut echo = request(&format!("{}/echo", plain.url()));
    echo.method = "POST".into();
    echo.body = Bytes::from_static(b"h2 body");
    echo.checks.body_contains = Some("h2 body".into());
    assert_eq!(call(echo, 5, SECOND, true), vec![Ok(()); 5]);

    let tls = sut(true);
    let url = format!("{}/", tls.url());
    assert_eq!(call(request(&url), 5, SECOND, true), vec![Ok(()); 5]);
    assert_eq!(call(request(&url), 5, SECOND, false), vec![Ok(()); 5]);
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure() {
    let tls = sut(true);
    let plan = HttpPlan::new(&[request(&format!("{}/", tls.url()))], SECOND, false, false).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&runtime, async move {
        let action = HttpAction::new(plan, 1);
        let ctx = CallCtx {
            intended: Instant::now(),
            abort: CancellationToken::new(),
        };
        action.call(ctx).await.outcome
    });
    assert_eq!(outcome, Err(Failure::Tls));
}
