//! The HTTP surface of the workspace service: paths to [`Endpoint`]s (a pure function,
//! tested without a socket), session tokens, JSON bodies, and JSON errors.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Transition, Workspaces, WsBody};

/// Every path of the service starts with this.
const PREFIX: &str = "/ws/";
/// The other header a session token may come in (coder's is `Coder-Session-Token`).
const SESSION_HEADER: &str = "session-token";
/// Largest JSON body read.
const MAX_BODY: usize = 64 * 1024;

/// Whether `path` belongs to the workspace service.
pub(crate) fn is_workspace_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    CreateUser,
    LogIn,
    CloseStreams,
    Watch,
    CreateWorkspace,
    GetWorkspace(&'a str),
    Build(&'a str, Transition),
    Autostart(&'a str),
    /// The path exists, the method does not; the methods it takes.
    WrongMethod(&'static str),
    NotFound,
}

impl Endpoint<'_> {
    /// Whether the caller must bring a session token.
    fn needs_token(self) -> bool {
        !matches!(
            self,
            Endpoint::CreateUser
                | Endpoint::LogIn
                | Endpoint::CloseStreams
                | Endpoint::WrongMethod(_)
                | Endpoint::NotFound
        )
    }
}

fn endpoint<'a>(method: &Method, path: &'a str) -> Endpoint<'a> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Endpoint::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let m = method.as_str();
    let (wanted, found) = match segments[..] {
        ["users"] => ("POST", Endpoint::CreateUser),
        ["login"] => ("POST", Endpoint::LogIn),
        ["admin", "close-streams"] => ("POST", Endpoint::CloseStreams),
        ["builds", "watch"] => ("GET", Endpoint::Watch),
        ["workspaces"] => ("POST", Endpoint::CreateWorkspace),
        ["workspaces", name] if !name.is_empty() => match m {
            "GET" => return Endpoint::GetWorkspace(name),
            "DELETE" => return Endpoint::Build(name, Transition::Delete),
            _ => return Endpoint::WrongMethod("GET, DELETE"),
        },
        ["workspaces", name, "start"] if !name.is_empty() => {
            ("POST", Endpoint::Build(name, Transition::Start))
        }
        ["workspaces", name, "stop"] if !name.is_empty() => {
            ("POST", Endpoint::Build(name, Transition::Stop))
        }
        ["workspaces", name, "autostart"] if !name.is_empty() => ("PUT", Endpoint::Autostart(name)),
        _ => return Endpoint::NotFound,
    };
    if m == wanted {
        found
    } else {
        Endpoint::WrongMethod(wanted)
    }
}

/// A 4xx answer: its status and a sentence for `{"error": ...}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    pub(crate) fn unauthorized(message: String) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message,
        }
    }

    pub(crate) fn not_found(message: String) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message,
        }
    }

    pub(crate) fn conflict(message: String) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            message,
        }
    }

    fn into_response(self) -> Response<WsBody> {
        json(self.status, &serde_json::json!({ "error": self.message }))
    }
}

/// `POST /ws/users` and `POST /ws/login`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    name: String,
    password: String,
}

/// `POST /ws/workspaces`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkspace {
    name: String,
}

/// `PUT /ws/workspaces/{name}/autostart`; `null` clears the schedule.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Autostart {
    schedule: Option<String>,
}

/// Answers one request under `/ws/`.
pub(crate) async fn handle(service: Workspaces, req: Request<Incoming>) -> Response<WsBody> {
    respond(&service, req)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn respond(
    service: &Workspaces,
    req: Request<Incoming>,
) -> Result<Response<WsBody>, ApiError> {
    let path = req.uri().path().to_owned();
    let found = endpoint(req.method(), &path);
    let user = if found.needs_token() {
        authenticate(service, req.headers())?
    } else {
        String::new()
    };
    let label = format!("{} {path}", req.method());
    match found {
        Endpoint::CreateUser => {
            let body: Credentials =
                read_json(req, &label, r#"{"name": "alice", "password": "..."}"#).await?;
            check_name("user", &body.name)?;
            if body.password.is_empty() {
                return Err(ApiError::bad_request("the password is empty".to_owned()));
            }
            service.create_user(&body.name, &body.password)?;
            Ok(json(
                StatusCode::CREATED,
                &serde_json::json!({ "name": body.name }),
            ))
        }
        Endpoint::LogIn => {
            let body: Credentials =
                read_json(req, &label, r#"{"name": "alice", "password": "..."}"#).await?;
            let token = service.log_in(&body.name, &body.password)?;
            Ok(json(StatusCode::OK, &serde_json::json!({ "token": token })))
        }
        Endpoint::CloseStreams => {
            let closed = service.0.streams.close_all();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "closed": closed }),
            ))
        }
        Endpoint::Watch => {
            let mut response = Response::new(service.0.streams.subscribe());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(response)
        }
        Endpoint::CreateWorkspace => {
            let body: NewWorkspace = read_json(req, &label, r#"{"name": "scaletest-0"}"#).await?;
            check_name("workspace", &body.name)?;
            let view = service.create_workspace(&user, &body.name)?;
            Ok(json(StatusCode::CREATED, &view))
        }
        Endpoint::GetWorkspace(name) => Ok(json(StatusCode::OK, &service.workspace(&user, name)?)),
        Endpoint::Build(name, transition) => Ok(json(
            StatusCode::CREATED,
            &service.build(&user, name, transition)?,
        )),
        Endpoint::Autostart(name) => {
            let example = r#"{"schedule": "CRON_TZ=UTC 30 9 * * *"} or {"schedule": "2026-01-02T15:04:05Z"} or {"schedule": null}"#;
            let body: Autostart = read_json(req, &label, example).await?;
            let view = service.set_autostart(&user, name, body.schedule.as_deref())?;
            Ok(json(StatusCode::OK, &view))
        }
        Endpoint::WrongMethod(allowed) => {
            let mut response = ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{label}: this path takes {allowed}"),
            }
            .into_response();
            if let Ok(allow) = HeaderValue::from_str(allowed) {
                response.headers_mut().insert(http::header::ALLOW, allow);
            }
            Ok(response)
        }
        Endpoint::NotFound => Err(ApiError::not_found(format!(
            "no endpoint {label}; the workspace service's endpoints are listed in stampede-sut's documentation"
        ))),
    }
}

/// The user whose session token the request carries: `Authorization: Bearer <token>` or
/// `Session-Token: <token>`.
fn authenticate(service: &Workspaces, headers: &HeaderMap) -> Result<String, ApiError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer.or_else(|| headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()));
    let Some(token) = token.map(str::trim) else {
        return Err(ApiError::unauthorized(
            "no session token: log in with POST /ws/login and send the token as \"Authorization: Bearer <token>\"".to_owned(),
        ));
    };
    service.user_of(token).ok_or_else(|| {
        ApiError::unauthorized("unknown session token: log in again with POST /ws/login".to_owned())
    })
}

/// User and workspace names: 1 to 64 letters, digits, `-`, `_` or `.`.
fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} name {name:?} is not 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    label: &str,
    example: &str,
) -> Result<T, ApiError> {
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "{label}: could not read the body (at most {MAX_BODY} bytes): {e}"
            )));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "{label}: the body is not the JSON expected ({e}); send {example}"
        ))
    })
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<WsBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(WsBody::Once(Some(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, want: Endpoint<'_>) {
        assert_eq!(endpoint(&method, path), want, "{method} {path}");
    }

    #[test]
    fn endpoints() {
        use Endpoint as E;
        check(Method::POST, "/ws/users", E::CreateUser);
        check(Method::POST, "/ws/login", E::LogIn);
        check(Method::POST, "/ws/admin/close-streams", E::CloseStreams);
        check(Method::GET, "/ws/builds/watch", E::Watch);
        check(Method::POST, "/ws/workspaces", E::CreateWorkspace);
        check(Method::GET, "/ws/workspaces/a", E::GetWorkspace("a"));
        check(
            Method::DELETE,
            "/ws/workspaces/a",
            E::Build("a", Transition::Delete),
        );
        check(
            Method::POST,
            "/ws/workspaces/a/start",
            E::Build("a", Transition::Start),
        );
        check(
            Method::POST,
            "/ws/workspaces/a/stop",
            E::Build("a", Transition::Stop),
        );
        check(Method::PUT, "/ws/workspaces/a/autostart", E::Autostart("a"));
        check(Method::GET, "/ws/users", E::WrongMethod("POST"));
        check(
            Method::PUT,
            "/ws/workspaces/a",
            E::WrongMethod("GET, DELETE"),
        );
        check(Method::GET, "/ws/workspaces/", E::NotFound);
        check(Method::GET, "/ws/nope", E::NotFound);
        check(Method::GET, "/ws/workspaces/a/b/c", E::NotFound);
    }

    #[test]
    fn names() {
        assert!(check_name("user", "scaletest-1_a.b").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            let err = check_name("user", bad).unwrap_err();
            assert!(err.message.contains("user name"), "{}", err.message);
        }
    }
}
