//! The endpoints of the system under test: parsing a path into a [`Route`] and answering it.
//!
//! Parsing is a pure function so the whole URL surface is tested without a socket; the
//! handler keeps the common answers allocation-free (static bodies, no headers added).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::body::SutBody;
use crate::snap::{self, SnapStore};
use crate::stall::Stall;

/// Longest `/delay/{ms}`: one hour.
const MAX_DELAY_MS: u64 = 3_600_000;
/// Largest `/bytes/{n}` and `/echo` body: 64 MiB.
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// What a request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: 200 `ok`.
    Ok,
    /// `/delay/{ms}`: 200 `ok` after this long.
    Delay(Duration),
    /// `/status/{code}`: this status, empty body.
    Status(StatusCode),
    /// `/bytes/{n}`: 200 with this many bytes.
    Bytes(u64),
    /// `/echo`: the request body back.
    Echo,
    /// Unknown path: 404.
    NotFound,
    /// A known endpoint with a bad parameter: 400 with this one-line explanation.
    Bad(String),
}

/// Maps a request path (without query) to its route.
pub(crate) fn route(path: &str) -> Route {
    match path {
        "/" => return Route::Ok,
        "/echo" => return Route::Echo,
        _ => {}
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        return match ms.parse::<u64>() {
            Ok(ms) if ms <= MAX_DELAY_MS => Route::Delay(Duration::from_millis(ms)),
            _ => Route::Bad(format!(
                "bad delay {ms:?}: expected whole milliseconds from 0 to {MAX_DELAY_MS}, as in /delay/250\n"
            )),
        };
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) if !status.is_informational() => Route::Status(status),
            Some(_) => Route::Bad(format!(
                "bad status {code:?}: 1xx statuses cannot be a final answer; expected 200 to 999\n"
            )),
            None => Route::Bad(format!(
                "bad status {code:?}: expected an HTTP status code from 200 to 999, as in /status/503\n"
            )),
        };
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(n) if n <= MAX_BODY => Route::Bytes(n),
            _ => Route::Bad(format!(
                "bad byte count {n:?}: expected a whole number from 0 to {MAX_BODY} (64 MiB), as in /bytes/1024\n"
            )),
        };
    }
    Route::NotFound
}

/// Answers one request, holding it while the server is in a stall window.
///
/// The stall is checked on arrival and again before answering, so a request whose own
/// delay ends inside a window is held too: during a window the server answers nothing.
pub(crate) async fn handle(
    req: Request<Incoming>,
    stall: Option<Stall>,
    snap: Option<Arc<SnapStore>>,
) -> Result<Response<SutBody>, Infallible> {
    if let Some(stall) = &stall {
        stall.wait().await;
    }
    let path = req.uri().path();
    let response = if path == "/snap" || path.starts_with("/snap/") {
        match snap {
            Some(store) => snap::handle(req, store).await,
            None => snap::disabled(),
        }
    } else {
        respond(req).await
    };
    if let Some(stall) = &stall {
        stall.wait().await;
    }
    Ok(response)
}

async fn respond(req: Request<Incoming>) -> Response<SutBody> {
    match route(req.uri().path()) {
        Route::Ok => ok(),
        Route::Delay(delay) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            ok()
        }
        Route::Status(status) => with_status(status, SutBody::once(Bytes::new())),
        Route::Bytes(n) => Response::new(SutBody::repeat(n)),
        Route::Echo => echo(req).await,
        Route::NotFound => text(StatusCode::NOT_FOUND, Bytes::from_static(b"not found")),
        Route::Bad(why) => text(StatusCode::BAD_REQUEST, Bytes::from(why)),
    }
}

async fn echo(req: Request<Incoming>) -> Response<SutBody> {
    let too_big = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from(format!(
                "request body over {MAX_BODY} bytes (64 MiB): /echo echoes at most that\n"
            )),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY) {
        return too_big();
    }
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let limit = usize::try_from(MAX_BODY).unwrap_or(usize::MAX);
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => {
            let mut response = Response::new(SutBody::once(collected.to_bytes()));
            if let Some(content_type) = content_type {
                response.headers_mut().insert(CONTENT_TYPE, content_type);
            }
            response
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => too_big(),
        Err(e) => text(
            StatusCode::BAD_REQUEST,
            Bytes::from(format!("could not read the request body: {e}\n")),
        ),
    }
}

fn ok() -> Response<SutBody> {
    Response::new(SutBody::once(Bytes::from_static(b"ok")))
}

fn with_status(status: StatusCode, body: SutBody) -> Response<SutBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

pub(crate) fn text(status: StatusCode, body: Bytes) -> Response<SutBody> {
    let mut response = with_status(status, SutBody::once(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Route) {
        assert_eq!(route(path), expected, "path {path:?}");
    }

    fn check_bad(path: &str, mentions: &str) {
        match route(path) {
            Route::Bad(why) => {
                assert!(
                    why.contains(mentions),
                    "{path:?}: {why:?} lacks {mentions:?}"
                );
                assert!(
                    why.ends_with('\n') && why.matches('\n').count() == 1,
                    "{why:?}"
                );
            }
            other => panic!("{path:?}: expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn fixed_paths() {
        check("/", Route::Ok);
        check("/echo", Route::Echo);
        check("", Route::NotFound);
        check("/nope", Route::NotFound);
        check("/echo/", Route::NotFound);
        check("/delay", Route::NotFound);
    }

    #[test]
    fn delays() {
        check("/delay/0", Route::Delay(Duration::ZERO));
        check("/delay/50", Route::Delay(Duration::from_millis(50)));
        check("/delay/3600000", Route::Delay(Duration::from_secs(3600)));
        check_bad("/delay/3600001", "3600000");
        check_bad("/delay/-1", "\"-1\"");
        check_bad("/delay/1.5", "milliseconds");
        check_bad("/delay/", "delay");
        check_bad("/delay/5/6", "\"5/6\"");
    }

    #[test]
    fn statuses() {
        check("/status/200", Route::Status(StatusCode::OK));
        check(
            "/status/503",
            Route::Status(StatusCode::SERVICE_UNAVAILABLE),
        );
        check(
            "/status/999",
            Route::Status(StatusCode::from_u16(999).unwrap()),
        );
        check_bad("/status/100", "1xx");
        check_bad("/status/199", "1xx");
        check_bad("/status/99", "200 to 999");
        check_bad("/status/1000", "200 to 999");
        check_bad("/status/abc", "\"abc\"");
        check_bad("/status/70000", "200 to 999");
    }

    #[test]
    fn byte_counts() {
        check("/bytes/0", Route::Bytes(0));
        check("/bytes/100000", Route::Bytes(100_000));
        check("/bytes/67108864", Route::Bytes(MAX_BODY));
        check_bad("/bytes/67108865", "64 MiB");
        check_bad("/bytes/lots", "\"lots\"");
    }
}
