//! The requests of a load step, validated once before the run starts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri};
use thiserror::Error;

/// One request as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Method name (`GET`, `POST`, ...).
    pub method: String,
    /// Headers as `(name, value)` pairs, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (empty for none).
    pub body: Bytes,
    /// What makes a response a success.
    pub checks: Checks,
}

/// What makes a response a success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// Accepted statuses; empty = 200-399.
    pub status: Vec<u16>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
}

/// Why the requests of a step cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpConfigError {
    /// The URL does not parse, or is not an absolute http(s) URL.
    #[error(
        "invalid URL {url:?}: {reason}; write an absolute URL such as http://127.0.0.1:8080/path"
    )]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The method is not a valid HTTP token.
    #[error("invalid method {0:?}: use an HTTP method such as GET, POST, PUT or DELETE")]
    Method(String),
    /// A header name or value is invalid.
    #[error("invalid header {name:?}: {reason}; write headers as 'Name: value'")]
    Header {
        /// The header's name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A status in the checks is not a valid HTTP status.
    #[error("invalid expected status {0}: use a number from 100 to 999")]
    Status(u16),
    /// Requests of one step go to different servers.
    #[error(
        "all requests of a step must go to one server, but {0} and {1} differ; use one step per server"
    )]
    MixedOrigins(String, String),
    /// No request at all.
    #[error("a load step needs at least one request: give it a url or a list of requests")]
    NoRequest,
    /// The timeout is zero.
    #[error("the request timeout must be longer than zero")]
    ZeroTimeout,
}

/// Where the connections go.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) authority: Authority,
    pub(crate) scheme: Scheme,
}

/// One request ready to send: everything but the per-call parts.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    /// The absolute URI, for HTTP/2.
    pub(crate) absolute: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) status: Vec<u16>,
    pub(crate) body_contains: Option<Bytes>,
    /// The whole HTTP/1.1 request, serialized once.
    pub(crate) wire: Bytes,
    /// A HEAD request: its response has no body.
    pub(crate) head: bool,
}

/// The validated requests of a load step, shared by every engine thread.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    pub(crate) origin: Origin,
    pub(crate) requests: Arc<[Prepared]>,
    pub(crate) timeout: Duration,
    pub(crate) http2: bool,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpPlan {
    /// Checks every request and prepares it. `insecure` accepts any TLS certificate.
    pub fn new(
        requests: &[RequestSpec],
        timeout: Duration,
        http2: bool,
        insecure: bool,
    ) -> Result<HttpPlan, HttpConfigError> {
        if timeout.is_zero() {
            return Err(HttpConfigError::ZeroTimeout);
        }
        let first = requests.first().ok_or(HttpConfigError::NoRequest)?;
        let origin = parse_origin(&first.url)?;
        let mut prepared = Vec::with_capacity(requests.len());
        for spec in requests {
            let this = parse_origin(&spec.url)?;
            if this.authority != origin.authority || this.scheme != origin.scheme {
                return Err(HttpConfigError::MixedOrigins(
                    first.url.clone(),
                    spec.url.clone(),
                ));
            }
            prepared.push(prepare(spec, &origin)?);
        }
        let tls = origin
            .tls
            .then(|| crate::tls::client_config(http2, insecure));
        Ok(HttpPlan {
            origin,
            requests: prepared.into(),
            timeout,
            http2,
            tls,
        })
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> &str {
        self.origin.authority.as_str()
    }
}

fn url_error(url: &str, reason: impl Into<String>) -> HttpConfigError {
    HttpConfigError::Url {
        url: url.to_string(),
        reason: reason.into(),
    }
}

fn parse_origin(url: &str) -> Result<Origin, HttpConfigError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(url, e.to_string()))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| url_error(url, "it has no scheme"))?;
    let tls = match scheme.as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(url_error(
                url,
                format!("the scheme {other:?} is not http or https"),
            ));
        }
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| url_error(url, "it has no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(url_error(url, "it has no host"));
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Origin {
        tls,
        host,
        port,
        authority,
        scheme,
    })
}

fn prepare(spec: &RequestSpec, origin: &Origin) -> Result<Prepared, HttpConfigError> {
    let method = Method::from_bytes(spec.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| HttpConfigError::Method(spec.method.clone()))?;
    let uri: Uri = spec
        .url
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(&spec.url, e.to_string()))?;
    let path_and_query = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let path = Uri::from(path_and_query.clone());
    let absolute = Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(origin.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| url_error(&spec.url, e.to_string()))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let header_error = |reason: String| HttpConfigError::Header {
            name: name.clone(),
            reason,
        };
        let name_parsed = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| header_error(e.to_string()))?;
        let value_parsed =
            HeaderValue::from_str(value.trim()).map_err(|e| header_error(e.to_string()))?;
        headers.append(name_parsed, value_parsed);
    }
    if !headers.contains_key(HOST) {
        let host = HeaderValue::from_str(origin.authority.as_str())
            .map_err(|e| url_error(&spec.url, e.to_string()))?;
        headers.insert(HOST, host);
    }
    for &status in &spec.checks.status {
        if !(100..=999).contains(&status) {
            return Err(HttpConfigError::Status(status));
        }
    }
    let wire = serialize(&method, &path, &headers, &spec.body);
    Ok(Prepared {
        head: method == Method::HEAD,
        wire,
        method,
        absolute,
        headers,
        body: spec.body.clone(),
        status: spec.checks.status.clone(),
        body_contains: spec
            .checks
            .body_contains
            .as_ref()
            .map(|s| Bytes::from(s.clone())),
    })
}

/// The HTTP/1.1 wire form of a request. `content-length` is always computed here, so a
/// header the user gave for it cannot disagree with the body.
fn serialize(method: &Method, path: &Uri, headers: &HeaderMap, body: &Bytes) -> Bytes {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let mut wire = Vec::with_capacity(128 + body.len());
    wire.extend_from_slice(method.as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(path.to_string().as_bytes());
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        wire.extend_from_slice(name.as_str().as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    let sends_body =
        !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if sends_body {
        wire.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(body);
    Bytes::from(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RequestSpec {
        RequestSpec {
            url: url.into(),
            method: "get".into(),
            headers: vec![],
            body: Bytes::new(),
            checks: Checks::default(),
        }
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let check = |url: &str, needle: &str| {
            let err = HttpPlan::new(&[spec(url)], Duration::from_secs(1), false, false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(err.contains("http://127.0.0.1:8080/path"), "{err}");
        };
        check("localhost:8080", "scheme");
        check("ftp://x/", "not http or https");
        check("http://", "invalid URL");
        check("/just/a/path", "no scheme");
        check("http://exa mple.com/", "invalid URL");
    }

    #[test]
    fn prepares_paths_hosts_and_methods() {
        let plan = HttpPlan::new(
            &[spec("http://127.0.0.1:9/a?b=1")],
            Duration::from_secs(1),
            false,
            false,
        )
        .unwrap();
        let r = &plan.requests[0];
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.absolute.to_string(), "http://127.0.0.1:9/a?b=1");
        assert_eq!(r.headers[HOST], "127.0.0.1:9");
        assert_eq!(plan.origin.port, 9);
        assert_eq!(plan.authority(), "127.0.0.1:9");
        assert_eq!(
            &r.wire[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n"
        );
    }

    #[test]
    fn serializes_bodies_with_their_length() {
        let mut post = spec("http://h:1/echo");
        post.method = "post".into();
        post.body = Bytes::from_static(b"hi");
        post.headers = vec![
            ("Content-Length".into(), "99".into()),
            ("X-A".into(), "b".into()),
        ];
        let plan = HttpPlan::new(&[post], Duration::from_secs(1), false, false).unwrap();
        assert_eq!(
            &plan.requests[0].wire[..],
            b"POST /echo HTTP/1.1\r\nx-a: b\r\nhost: h:1\r\ncontent-length: 2\r\n\r\nhi"
        );
    }

    #[test]
    fn refuses_bad_methods_headers_and_mixed_servers() {
        let t = Duration::from_secs(1);
        let mut bad_method = spec("http://a/");
        bad_method.method = "GE T".into();
        assert!(matches!(
            HttpPlan::new(&[bad_method], t, false, false),
            Err(HttpConfigError::Method(_))
        ));
        let mut bad_header = spec("http://a/");
        bad_header.headers.push(("X Bad".into(), "v".into()));
        assert!(matches!(
            HttpPlan::new(&[bad_header], t, false, false),
            Err(HttpConfigError::Header { .. })
        ));
        let mixed = [spec("http://a/"), spec("http://b/")];
        assert!(matches!(
            HttpPlan::new(&mixed, t, false, false),
            Err(HttpConfigError::MixedOrigins(..))
        ));
        assert!(matches!(
            HttpPlan::new(&[], t, false, false),
            Err(HttpConfigError::NoRequest)
        ));
    }
}
