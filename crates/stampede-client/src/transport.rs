//! One call to the server, retried the way k6's cloud client retries.
//!
//! A call makes up to `attempts` attempts, `retry_interval` apart, with no backoff. It tries
//! again when no answer came (connection refused or reset, timeout) or the answer was 5xx or
//! 429, and never after another 4xx. A call that changes something (any method but GET)
//! carries one random `Idempotency-Key`, the same on every attempt, so the server can tell a
//! retry from a second request. Each attempt opens its own connection: a retry never reuses
//! a connection that just failed, and the calls are few (a poll every 2 s).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;

use crate::config::{ClientConfig, ConfigError};
use crate::error::{ClientError, api_error};

/// The header that makes a retried POST safe.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Where the server is: what to connect to and what to put before each path.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port` for the `Host` header.
    authority: String,
    /// The host as in a URL (an IPv6 address keeps its brackets).
    host: String,
    port: u16,
    /// A path prefix without the trailing `/` (`""` usually).
    prefix: String,
}

impl Endpoint {
    /// Parses a base URL like `http://jobs.example:6565`; the error says what to write.
    pub(crate) fn parse(server: &str) -> Result<Endpoint, String> {
        let uri: Uri = server
            .parse()
            .map_err(|e| format!("not a URL ({e}); write it like http://HOST:PORT"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(
                    "https is not supported yet; reach the server over http://HOST:PORT".into(),
                );
            }
            _ => return Err("write the server's URL like http://HOST:PORT".into()),
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or("the URL has no host; write it like http://HOST:PORT")?;
        if authority.as_str().contains('@') {
            return Err("put the token in STAMPEDE_TOKEN or --token, not in the URL".into());
        }
        if uri.query().is_some() {
            return Err("the server's URL takes no query (?...)".into());
        }
        Ok(Endpoint {
            authority: authority.as_str().to_string(),
            host: authority.host().to_string(),
            port: authority.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// What the client sends on every call and how it retries: built once from the config.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    endpoint: Endpoint,
    /// The base URL as configured, for messages.
    server: String,
    headers: HeaderMap,
    timeout: Duration,
    attempts: u32,
    retry_interval: Duration,
}

/// One logical request.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// The path under the server, with its query: `/v1/jobs?state=failed`.
    pub(crate) path: String,
    /// The body and its content type.
    pub(crate) body: Option<(&'a str, &'static str)>,
}

impl Call<'_> {
    /// `GET /v1/jobs`, for messages.
    pub(crate) fn describe(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

/// Why an attempt got no answer.
type NetworkError = String;

impl Transport {
    pub(crate) fn new(config: &ClientConfig) -> Result<Transport, ConfigError> {
        config.check()?;
        let endpoint = Endpoint::parse(&config.server).map_err(|reason| ConfigError::Invalid {
            layer: None,
            field: "server",
            value: config.server.clone(),
            reason,
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("stampede-client/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = &config.token {
            // `check` made sure the token is printable ASCII.
            if let Ok(mut value) = HeaderValue::from_str(&format!("Token {token}")) {
                value.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, value);
            }
        }
        if let Ok(host) = HeaderValue::from_str(&endpoint.authority) {
            headers.insert(header::HOST, host);
        }
        Ok(Transport {
            endpoint,
            server: config.server.trim_end_matches('/').to_string(),
            headers,
            timeout: config.timeout,
            attempts: config.attempts,
            retry_interval: config.retry_interval,
        })
    }

    /// Sends `call` until it is answered 2xx, answered with an error not worth retrying,
    /// or out of attempts; returns the 2xx body.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Bytes, ClientError> {
        let uri: Uri = format!("{}{}", self.endpoint.prefix, call.path)
            .parse()
            .map_err(|e| {
                ClientError::Config(ConfigError::Invalid {
                    layer: None,
                    field: "server",
                    value: self.server.clone(),
                    reason: format!("cannot make a request URL with it: {e}"),
                })
            })?;
        let mut headers = self.headers.clone();
        if let Some((_, content_type)) = call.body {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if call.method != Method::GET
            && let Ok(key) = HeaderValue::from_str(&idempotency_key())
        {
            headers.insert(IDEMPOTENCY_KEY, key);
        }
        let body = Bytes::copy_from_slice(call.body.map_or("", |(b, _)| b).as_bytes());
        let mut attempt = 1;
        loop {
            let request = {
                let mut request = Request::new(Full::new(body.clone()));
                *request.method_mut() = call.method.clone();
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers.clone();
                request
            };
            let outcome = tokio::time::timeout(self.timeout, self.exchange(request)).await;
            let failure = match outcome {
                Ok(Ok((status, body))) if status.is_success() => return Ok(body),
                Ok(Ok((status, body))) => {
                    let error = api_error(status, &body, &self.server, &call.path);
                    if !retryable(status) || attempt >= self.attempts {
                        return Err(error);
                    }
                    error.to_string()
                }
                Ok(Err(network)) => network,
                Err(_) => format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            };
            if attempt >= self.attempts {
                return Err(ClientError::Network {
                    url: self.server.clone(),
                    attempts: attempt,
                    last: failure,
                });
            }
            attempt += 1;
            tokio::time::sleep(self.retry_interval).await;
        }
    }

    /// One attempt on a fresh connection: the status and the whole body.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), NetworkError> {
        let address = format!("{}:{}", self.endpoint.host, self.endpoint.port);
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("cannot connect to {address}: {}", chain(&e)))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| chain(&e))?;
        // The connection lives as long as this attempt: a timeout drops it, and the socket.
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let response = sender.send_request(request).await.map_err(|e| chain(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the answer was cut off: {}", chain(&e)))?
            .to_bytes();
        Ok((status, body))
    }
}

/// 5xx and 429 may pass; any other answer will be the same next time.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// 16 random hex digits, like k6's; drawn once per logical request.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No system randomness: the std hasher's per-process random keys, the time and a
        // counter still make a key no other request of this process will have.
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bytes = hasher.finish().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An error and its causes, `outer: inner: innermost`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
