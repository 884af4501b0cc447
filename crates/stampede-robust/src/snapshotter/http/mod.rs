//! The `http` snapshotter: speaks to the snapshot store of the built-in system under test
//! (`stampede sut`'s `/snap/...`), one short HTTP/1.1 connection per call so that a
//! restarted server is picked up without stale pooled connections.
//!
//! * `authorize_client` asks the store for the client's token (an admin call, with
//!   [`HttpConfig::admin_token`] if set); every other client call sends that token.
//! * `snapshot` packs the source tree into one archive (see `archive.rs`) and uploads it;
//!   the store answers with the id only once the snapshot is on disk. `restore` downloads
//!   and unpacks it.
//! * `gc` is the store's admin GC; `remove_client` revokes the client's token.
//! * `restart_server` calls the restart hook given with
//!   [`HttpSnapshotter::with_restart`] (e.g. stop an in-process sut and start it again on
//!   the same data directory); without one it is a no-op.
//!
//! A refused connection (the server is down or restarting) is retried for
//! [`HttpConfig::connect_wait`]; any other failure is an error at once.

mod archive;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::{ClientId, SnapshotError, SnapshotId, Snapshotter};
use crate::outcome::Outcome;

fn default_timeout() -> String {
    "60s".to_string()
}

fn default_connect_wait() -> String {
    "10s".to_string()
}

/// Where the snapshot store is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Base URL of the server, `http://host:port` (plain HTTP; the store is under
    /// `/snap`), e.g. the URL `stampede sut` prints.
    pub url: String,
    /// The store's admin secret, for issuing tokens, removing clients and GC; leave it
    /// unset for a store without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// How long one call may take, e.g. `"60s"`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// How long to keep retrying a refused connection (a server restarting), e.g. `"10s"`.
    #[serde(default = "default_connect_wait")]
    pub connect_wait: String,
}

impl HttpConfig {
    /// A configuration for the store at `url`, with defaults for the rest.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            admin_token: None,
            timeout: default_timeout(),
            connect_wait: default_connect_wait(),
        }
    }
}

/// Kills and restarts the server under test; runs on a blocking thread.
pub type RestartHook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Talks to the sut's snapshot store; see the module docs.
pub struct HttpSnapshotter {
    config: HttpConfig,
    authority: String,
    timeout: Duration,
    connect_wait: Duration,
    tokens: Mutex<HashMap<ClientId, String>>,
    restart: Option<RestartHook>,
}

impl fmt::Debug for HttpSnapshotter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSnapshotter")
            .field("url", &self.config.url)
            .field("restart", &self.restart.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpSnapshotter {
    /// Checks the URL and durations.
    pub fn new(config: HttpConfig) -> Result<Self, SnapshotError> {
        let authority = config
            .url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| {
                SnapshotError::Config(format!(
                    "url {:?} is not a plain http://host:port base URL, as `stampede sut` prints",
                    config.url
                ))
            })?
            .to_owned();
        let duration = |field: &str, value: &str| {
            humantime::parse_duration(value.trim()).map_err(|_| {
                SnapshotError::Config(format!(
                    "{field} {value:?} is not a duration like \"30s\" or \"10m\""
                ))
            })
        };
        Ok(Self {
            timeout: duration("timeout", &config.timeout)?,
            connect_wait: duration("connect_wait", &config.connect_wait)?,
            authority,
            config,
            tokens: Mutex::new(HashMap::new()),
            restart: None,
        })
    }

    /// Sets the hook [`Snapshotter::restart_server`] calls to kill and restart the server.
    pub fn with_restart(mut self, hook: RestartHook) -> Self {
        self.restart = Some(hook);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn token(&self, op: &'static str, client: &ClientId) -> Result<String, SnapshotError> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(client)
            .cloned()
            .ok_or_else(|| SnapshotError::Other {
                op,
                message: format!(
                    "client {client} is not authorized on the store: authorize it first"
                ),
            })
    }

    /// One call: `Ok(body)` for a 2xx answer, else an error with the status and body.
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<Bytes, SnapshotError> {
        let what = format!("{method} {}{path}", self.config.url);
        let fail = |message: String| SnapshotError::Other {
            op,
            message: format!("{what}: {message}"),
        };
        let exchange = async {
            let tcp = self
                .connect()
                .await
                .map_err(|e| fail(format!("cannot connect: {e}")))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let conn = tokio::spawn(conn);
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(http::header::HOST, &self.authority);
            if let Some(token) = token {
                req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let req = req.body(Full::new(body)).map_err(|e| fail(e.to_string()))?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| fail(format!("reading the answer: {e}")))?
                .to_bytes();
            conn.abort();
            Ok::<_, SnapshotError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))??;
        if !status.is_success() {
            return Err(SnapshotError::Http {
                op,
                request: what,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).trim().to_owned(),
            });
        }
        Ok(bytes)
    }

    /// Connects, retrying refused connections for `connect_wait`.
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let deadline = tokio::time::Instant::now() + self.connect_wait;
        loop {
            match TcpStream::connect(&self.authority).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn client_call(
        &self,
        op: &'static str,
        client: &ClientId,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Bytes, SnapshotError> {
        let token = self.token(op, client)?;
        self.call(op, method, path, Some(&token), body).await
    }

    async fn admin_call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
    ) -> Result<Bytes, SnapshotError> {
        let token = self.config.admin_token.as_deref();
        self.call(op, method, path, token, Bytes::new()).await
    }
}

/// Runs archive work on a blocking thread, naming the directory in errors.
async fn on_disk<T: Send + 'static>(
    op: &'static str,
    dir: &Path,
    work: impl FnOnce(PathBuf) -> std::io::Result<T> + Send + 'static,
) -> Result<T, SnapshotError> {
    let path = dir.to_path_buf();
    let shown = path.display().to_string();
    let result = tokio::task::spawn_blocking(move || work(path)).await;
    let message = match result {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => format!("{shown}: {e}"),
        Err(e) => format!("{shown}: the blocking task did not finish: {e}"),
    };
    Err(SnapshotError::Other { op, message })
}

fn snapshot_path(id: &SnapshotId) -> String {
    format!("/snap/snapshots/{id}")
}

impl Snapshotter for HttpSnapshotter {
    async fn authorize_client(&self, client: &ClientId) -> Result<(), SnapshotError> {
        let path = format!("/snap/clients/{client}");
        let token = self
            .admin_call("authorize client", Method::POST, &path)
            .await?;
        let token = String::from_utf8_lossy(&token).trim().to_owned();
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(client.clone(), token);
        Ok(())
    }

    async fn connect(&self, client: &ClientId) -> Result<(), SnapshotError> {
        // Proves the token works before the first snapshot depends on it.
        self.list(client).await.map(drop)
    }

    async fn snapshot(
        &self,
        client: &ClientId,
        source: &Path,
    ) -> Result<SnapshotId, SnapshotError> {
        let archive = on_disk("snapshot", source, |dir| archive::pack(&dir)).await?;
        let id = self
            .client_call(
                "snapshot",
                client,
                Method::POST,
                "/snap/snapshots",
                archive.into(),
            )
            .await?;
        let id = String::from_utf8_lossy(&id).trim().to_owned();
        if id.is_empty() {
            return Err(SnapshotError::Other {
                op: "snapshot",
                message: "the store acknowledged the snapshot without an id".into(),
            });
        }
        Ok(SnapshotId(id))
    }

    async fn restore(
        &self,
        client: &ClientId,
        id: &SnapshotId,
        target: &Path,
    ) -> Result<(), SnapshotError> {
        let archive = self
            .client_call(
                "restore",
                client,
                Method::GET,
                &snapshot_path(id),
                Bytes::new(),
            )
            .await?;
        on_disk("restore", target, move |dir| {
            archive::unpack(&archive, &dir)
        })
        .await
    }

    async fn list(&self, client: &ClientId) -> Result<Vec<SnapshotId>, SnapshotError> {
        let body = self
            .client_call("list", client, Method::GET, "/snap/snapshots", Bytes::new())
            .await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| SnapshotId(l.to_owned()))
            .collect())
    }

    async fn delete(&self, client: &ClientId, id: &SnapshotId) -> Result<(), SnapshotError> {
        self.client_call(
            "delete",
            client,
            Method::DELETE,
            &snapshot_path(id),
            Bytes::new(),
        )
        .await
        .map(drop)
    }

    async fn gc(&self) -> Result<Outcome<()>, SnapshotError> {
        self.admin_call("gc", Method::POST, "/snap/gc").await?;
        Ok(Outcome::Done(()))
    }

    async fn remove_client(&self, client: &ClientId) -> Result<(), SnapshotError> {
        let path = format!("/snap/clients/{client}");
        self.admin_call("remove client", Method::DELETE, &path)
            .await?;
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(client);
        Ok(())
    }

    async fn restart_server(&self) -> Result<Outcome<()>, SnapshotError> {
        let Some(hook) = self.restart.clone() else {
            return Ok(Outcome::noop("no restart hook is set"));
        };
        match tokio::task::spawn_blocking(move || hook()).await {
            Ok(Ok(())) => Ok(Outcome::Done(())),
            Ok(Err(message)) => Err(SnapshotError::Other {
                op: "restart server",
                message,
            }),
            Err(e) => Err(SnapshotError::Other {
                op: "restart server",
                message: format!("the restart hook did not finish: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let ok = |url: &str, authority: &str| {
            let s = HttpSnapshotter::new(HttpConfig::new(url)).unwrap();
            assert_eq!(s.authority, authority);
        };
        ok("http://127.0.0.1:8080", "127.0.0.1:8080");
        ok("http://localhost:1/", "localhost:1");
        for bad in [
            "https://x:1",
            "127.0.0.1:8080",
            "http://",
            "http://x:1/snap",
        ] {
            let err = HttpSnapshotter::new(HttpConfig::new(bad)).unwrap_err();
            assert!(err.to_string().contains("http://host:port"), "{err}");
        }
        let mut config = HttpConfig::new("http://x:1");
        config.timeout = "soon".into();
        assert!(HttpSnapshotter::new(config).is_err());
    }
}
