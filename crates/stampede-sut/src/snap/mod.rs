//! The snapshot store (`/snap/...`): a small multi-client backup server that the
//! robustness framework's `http` snapshotter tests, with opt-in bugs that the checker must
//! catch. Off unless the server is started with a [`SnapConfig`].
//!
//! | request | who | answer |
//! |---|---|---|
//! | `POST /snap/clients/{client}` | admin | 200, the client's token (the same one again if it has one) |
//! | `DELETE /snap/clients/{client}` | admin | 204; the token is revoked, the snapshots stay |
//! | `POST /snap/snapshots` (body: an archive) | client | 201, the new snapshot's id, once it is on disk |
//! | `GET /snap/snapshots` | client | 200, the client's snapshot ids, one per line, oldest first |
//! | `GET /snap/snapshots/{id}` | client | 200, the archive |
//! | `DELETE /snap/snapshots/{id}` | client | 204 |
//! | `POST /snap/gc` | admin | 200, `removed N` unfinished writes |
//!
//! **Authorization (decision):** clients send `Authorization: Bearer <token>` and see only
//! their own snapshots. Issuing tokens, removing clients and GC are admin calls: when
//! [`SnapConfig::admin_token`] is set they need it as the bearer token; when it is not,
//! anyone may make them (an open store, fine on loopback, as the sut is a test target).
//! Names of clients are 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
//!
//! The archive format is described in `archive.rs`: a header line per entry and its bytes.

mod archive;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::body::SutBody;
use crate::routes::text;

use store::PutError;
pub(crate) use store::SnapStore;

/// Default largest snapshot upload: 256 MiB.
const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// Turns the snapshot store on: where it keeps its data and which bugs it has.
///
/// ```no_run
/// use stampede_sut::{Config, Server, SnapConfig};
/// let server = Server::start_with_store(Config::default(), SnapConfig::new("/var/tmp/snaps"))?;
/// println!("store at {}/snap", server.url());
/// # Ok::<(), stampede_sut::SutError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapConfig {
    /// Data directory, created if missing; a restarted server on the same directory
    /// serves every snapshot it acknowledged before (tokens included).
    pub dir: PathBuf,
    /// Secret for the admin calls (issue a token, remove a client, GC), sent as
    /// `Authorization: Bearer <secret>`; `None` leaves them open. Default `None`.
    pub admin_token: Option<String>,
    /// Largest snapshot upload accepted; larger ones get 413. Default 256 MiB.
    pub max_snapshot_bytes: u64,
    /// Deliberate bugs, all off by default.
    pub bugs: SnapBugs,
}

impl SnapConfig {
    /// A store in `dir` with no admin secret, the default size limit and no bugs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SnapConfig {
            dir: dir.into(),
            admin_token: None,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            bugs: SnapBugs::default(),
        }
    }
}

/// Opt-in bugs, so tests can prove that a robustness checker catches each kind of damage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapBugs {
    /// Store every snapshot without its first file.
    pub drop_file: bool,
    /// Store every snapshot with the first byte of its first non-empty file inverted.
    pub flip_byte: bool,
    /// Acknowledge a snapshot before it is on disk: the newest one is kept in memory only
    /// (and written when the next one arrives), so a crash loses it.
    pub lose_last_write: bool,
}

impl std::str::FromStr for SnapBugs {
    type Err = String;

    /// Parses a comma-separated list of `drop-file`, `flip-byte`, `lose-last-write`
    /// (empty or `none` for no bugs), as a CLI flag would take it.
    fn from_str(list: &str) -> Result<Self, String> {
        let mut bugs = SnapBugs::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" => {}
                "drop-file" => bugs.drop_file = true,
                "flip-byte" => bugs.flip_byte = true,
                "lose-last-write" => bugs.lose_last_write = true,
                _ => {
                    return Err(format!(
                        "unknown snapshot-store bug {name:?}: expected drop-file, flip-byte or lose-last-write"
                    ));
                }
            }
        }
        Ok(bugs)
    }
}

/// Answers a request under `/snap`.
pub(crate) async fn handle(req: Request<Incoming>, store: Arc<SnapStore>) -> Response<SutBody> {
    let delete = req.method() == Method::DELETE;
    match dispatch(req, store).await {
        Ok(Ok(Done::Response(response))) => response,
        Ok(Ok(Done::Text(_))) if delete => text(StatusCode::NO_CONTENT, Bytes::new()),
        Ok(Ok(Done::Text(body))) => text(StatusCode::OK, Bytes::from(body)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            text(StatusCode::NOT_FOUND, Bytes::from(format!("{e}\n")))
        }
        Ok(Err(e)) => server_error(&e),
        Err(Refusal(status, why)) => text(status, Bytes::from(why)),
    }
}

/// A refused request: its status and a one-line reason.
struct Refusal(StatusCode, String);

/// What a store call produced.
enum Done {
    /// A text body for a 200 (or nothing, for a 204 to a DELETE).
    Text(String),
    /// A complete answer.
    Response(Response<SutBody>),
}

/// Routes one request; `Err` is a refusal (bad route, method or credentials).
async fn dispatch(
    req: Request<Incoming>,
    store: Arc<SnapStore>,
) -> Result<std::io::Result<Done>, Refusal> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path
        .strip_prefix("/snap")
        .unwrap_or_default()
        .split('/')
        .skip(1)
        .collect();
    let method = req.method().clone();
    let text_of = |r: std::io::Result<String>| r.map(Done::Text);
    Ok(match (&method, segments.as_slice()) {
        (&Method::POST, ["clients", name]) => {
            admin(&req, &store)?;
            let name = valid_client(name)?;
            text_of(blocking(store, move |s| s.authorize(&name)).await)
        }
        (&Method::DELETE, ["clients", name]) => {
            admin(&req, &store)?;
            let name = valid_client(name)?;
            let removed = blocking(store, move |s| s.remove_client(&name)).await;
            text_of(removed.map(|_| String::new()))
        }
        (&Method::POST, ["gc"]) => {
            admin(&req, &store)?;
            let removed = blocking(store, |s| s.gc()).await;
            text_of(removed.map(|n| format!("removed {n}\n")))
        }
        (&Method::POST, ["snapshots"]) => {
            let client = client(&req, &store)?;
            Ok(Done::Response(put(req, store, client).await))
        }
        (&Method::GET, ["snapshots"]) => {
            let client = client(&req, &store)?;
            let ids = blocking(store, move |s| s.list(&client)).await;
            text_of(ids.map(|ids| ids.iter().map(|id| format!("{id}\n")).collect()))
        }
        (_, ["snapshots", id]) if !valid_id(id) => return Err(not_found(&path)),
        (&Method::GET, ["snapshots", id]) => {
            let client = client(&req, &store)?;
            Ok(Done::Response(get(store, client, (*id).to_owned()).await))
        }
        (&Method::DELETE, ["snapshots", id]) => {
            let client = client(&req, &store)?;
            let id = (*id).to_owned();
            text_of(
                blocking(store, move |s| match s.delete(&client, &id) {
                    Ok(true) => Ok(String::new()),
                    Ok(false) => Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("client {client} has no snapshot {id}"),
                    )),
                    Err(e) => Err(e),
                })
                .await,
            )
        }
        (_, ["clients", _] | ["gc"] | ["snapshots"] | ["snapshots", _]) => {
            return Err(Refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}\n"),
            ));
        }
        _ => return Err(not_found(&path)),
    })
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: Arc<SnapStore>,
    op: impl FnOnce(&SnapStore) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .map_err(std::io::Error::other)?
}

async fn put(req: Request<Incoming>, store: Arc<SnapStore>, client: String) -> Response<SutBody> {
    let max = store.max_snapshot_bytes;
    let too_big = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from(format!(
                "snapshot over {max} bytes: raise the store's max_snapshot_bytes\n"
            )),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return too_big();
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let archive = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_big(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                Bytes::from(format!("could not read the snapshot upload: {e}\n")),
            );
        }
    };
    let stored = tokio::task::spawn_blocking(move || store.put(&client, archive)).await;
    match stored {
        Ok(Ok(id)) => text(StatusCode::CREATED, Bytes::from(format!("{id}\n"))),
        Ok(Err(PutError::Invalid(why))) => text(StatusCode::BAD_REQUEST, Bytes::from(why + "\n")),
        Ok(Err(PutError::Io(e))) => server_error(&e),
        Err(e) => server_error(&std::io::Error::other(e)),
    }
}

async fn get(store: Arc<SnapStore>, client: String, id: String) -> Response<SutBody> {
    let found = {
        let (client, id) = (client.clone(), id.clone());
        blocking(store, move |s| s.get(&client, &id)).await
    };
    match found {
        Ok(Some(archive)) => {
            let mut response = Response::new(SutBody::once(archive));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            Bytes::from(format!("client {client} has no snapshot {id}\n")),
        ),
        Err(e) => server_error(&e),
    }
}

/// The bearer token of a request.
fn bearer(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `Err(401/403)` unless the request may make admin calls.
fn admin(req: &Request<Incoming>, store: &SnapStore) -> Result<(), Refusal> {
    let Some(secret) = &store.admin_token else {
        return Ok(());
    };
    if bearer(req) == Some(secret.as_str()) {
        return Ok(());
    }
    Err(Refusal(
        StatusCode::FORBIDDEN,
        "this is an admin call: send the store's admin secret as `Authorization: Bearer <secret>`\n"
            .to_owned(),
    ))
}

/// The client whose token the request carries, or `Err(401)`.
fn client(req: &Request<Incoming>, store: &SnapStore) -> Result<String, Refusal> {
    bearer(req)
        .and_then(|token| store.client_for(token))
        .ok_or_else(|| {
            Refusal(
                StatusCode::UNAUTHORIZED,
                "missing or unknown client token: get one with POST /snap/clients/{client} and send it as `Authorization: Bearer <token>`\n"
                    .to_owned(),
            )
        })
}

fn valid_client(name: &str) -> Result<String, Refusal> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(name.to_owned());
    }
    Err(Refusal(
        StatusCode::BAD_REQUEST,
        format!(
            "bad client name {name:?}: use 1 to 128 of A-Z a-z 0-9 . _ -, not starting with `.`\n"
        ),
    ))
}

/// Ids are made by the store (hex); anything else cannot name a snapshot.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn not_found(path: &str) -> Refusal {
    Refusal(
        StatusCode::NOT_FOUND,
        format!("no snapshot-store endpoint at {path}\n"),
    )
}

fn server_error(e: &std::io::Error) -> Response<SutBody> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        Bytes::from(format!("the snapshot store could not do it: {e}\n")),
    )
}

/// The answer to `/snap/...` when the server runs without a store.
pub(crate) fn disabled() -> Response<SutBody> {
    text(
        StatusCode::NOT_FOUND,
        Bytes::from_static(
            b"the snapshot store is off: start the sut with a data directory (SnapConfig)\n",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_lists_parse() {
        let check =
            |list: &str, want: Result<SnapBugs, &str>| match (list.parse::<SnapBugs>(), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{list:?}"),
                (Err(got), Err(mentions)) => assert!(got.contains(mentions), "{got}"),
                (got, want) => panic!("{list:?}: got {got:?}, wanted {want:?}"),
            };
        check("", Ok(SnapBugs::default()));
        check("none", Ok(SnapBugs::default()));
        check(
            "drop-file, lose-last-write",
            Ok(SnapBugs {
                drop_file: true,
                lose_last_write: true,
                ..SnapBugs::default()
            }),
        );
        check(
            "flip-byte",
            Ok(SnapBugs {
                flip_byte: true,
                ..SnapBugs::default()
            }),
        );
        check("flip", Err("\"flip\": expected drop-file"));
    }

    #[test]
    fn names_and_ids() {
        assert!(valid_client("client-0-ab12_x.y").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(valid_client(bad).is_err(), "{bad:?}");
        }
        assert!(valid_id("0123abcdef"));
        assert!(!valid_id("..") && !valid_id("") && !valid_id("xyz"));
    }
}
