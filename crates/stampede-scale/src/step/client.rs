//! The scale step's HTTP client: one short HTTP/1.1 connection per request, as coder's
//! scale runners use a client of their own each (no pooled connection is shared between
//! runners, so one runner's slow answer never queues another's request). Plain `http://`
//! only; the workspace service of `stampede sut` and most test deployments need no more.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request, rendered.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<(Bytes, Option<&'static str>)>,
}

impl Call {
    /// `GET url` with `headers`.
    pub(crate) fn get(url: String, headers: Vec<(String, String)>) -> Call {
        Call {
            method: Method::GET,
            url,
            headers,
            body: None,
        }
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// Sends the request; the response with its body still to read.
    pub(crate) async fn open(&self) -> Result<http::Response<Incoming>, String> {
        let what = self.what();
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| format!("{what}: not a URL ({e}); write http://host:port/path"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{what}: the scale step speaks plain http:// only; use an http:// URL"
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{what}: the URL has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("{what}: connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(path)
            .header(
                http::header::HOST,
                uri.authority().map_or(host, |a| a.as_str()),
            );
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("{what}: {name:?} is not a header name"))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("{what}: the value of {name} is not a header value"))?;
            request = request.header(name, value);
        }
        let body = match &self.body {
            Some((bytes, content_type)) => {
                if let Some(content_type) = content_type {
                    request = request.header(http::header::CONTENT_TYPE, *content_type);
                }
                bytes.clone()
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("{what}: {e}"))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("{what}: {e}"))
    }

    /// Sends the request and reads the whole answer.
    pub(crate) async fn send(&self) -> Result<(u16, Bytes), String> {
        let response = self.open().await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{}: reading the answer: {e}", self.what()))?;
        Ok((status, body.to_bytes()))
    }

    /// Opens a streamed answer, which must be 200.
    pub(crate) async fn stream(&self) -> Result<BodyDataStream<Incoming>, String> {
        let response = self.open().await?;
        if response.status() != http::StatusCode::OK {
            return Err(format!(
                "{}: status {}, expected 200",
                self.what(),
                response.status().as_u16()
            ));
        }
        Ok(BodyDataStream::new(response.into_body()))
    }
}
