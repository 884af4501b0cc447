//! A minimal HTTP/1.1 client connection for the hot path.
//!
//! A load generator sends the same few requests millions of times over connections it
//! owns, one exchange at a time. hyper's client runs each connection as a separate task fed
//! through a channel, which costs several task switches per request; here the virtual user
//! writes a pre-serialized request and parses the response itself (with `httparse`) on its
//! own task: one write and usually one read per request, as wrk does. Framing follows RFC
//! 9112 §6: no body for HEAD, 1xx, 204 and 304; chunked; content-length; else until close.

use bytes::{Buf, BytesMut};
use stampede_core::Failure;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most header bytes a response may have.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// What came back.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The body, when it was asked for.
    pub(crate) body: Option<BytesMut>,
    /// Whether the connection can carry another request.
    pub(crate) reusable: bool,
}

/// Why an exchange failed, and whether anything of the response had arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExchangeError {
    pub(crate) failure: Failure,
    /// True when not one byte of the response arrived: on a reused connection that means
    /// the server had closed it while idle, and the request may be retried.
    pub(crate) nothing_received: bool,
}

/// One HTTP/1.1 connection.
pub(crate) struct H1<S> {
    stream: S,
    buf: BytesMut,
}

/// The failure kind of an I/O error.
pub(crate) fn io_failure(error: &std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Failure::Reset
        }
        TimedOut => Failure::Timeout,
        _ => Failure::Other,
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    pub(crate) fn new(stream: S) -> H1<S> {
        H1 {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Sends `request` (a complete, serialized request) and reads the whole response.
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        head: bool,
        keep_body: bool,
    ) -> Result<Response, ExchangeError> {
        let early = |failure| ExchangeError {
            failure,
            nothing_received: true,
        };
        self.buf.clear();
        self.stream
            .write_all(request)
            .await
            .map_err(|e| early(io_failure(&e)))?;
        self.stream
            .flush()
            .await
            .map_err(|e| early(io_failure(&e)))?;
        match self.fill().await {
            Ok(true) => {}
            Ok(false) => return Err(early(Failure::Reset)),
            Err(failure) => return Err(early(failure)),
        }
        let late = |failure| ExchangeError {
            failure,
            nothing_received: false,
        };
        let (status, framing, mut reusable) = self.read_head(head).await.map_err(late)?;
        let mut body = keep_body.then(BytesMut::new);
        match framing {
            Framing::None => {}
            Framing::Length(n) => self.read_exact_body(n, &mut body).await.map_err(late)?,
            Framing::Chunked => self.read_chunked(&mut body).await.map_err(late)?,
            Framing::UntilClose => {
                reusable = false;
                loop {
                    take_into(&mut self.buf, usize::MAX, &mut body);
                    if !self.fill().await.map_err(late)? {
                        break;
                    }
                }
            }
        }
        Ok(Response {
            status,
            body,
            reusable,
        })
    }

    /// Reads more bytes; `false` at end of stream.
    async fn fill(&mut self) -> Result<bool, Failure> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| io_failure(&e))?;
        Ok(n > 0)
    }

    async fn fill_or_reset(&mut self) -> Result<(), Failure> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(Failure::Reset)
        }
    }

    /// Parses the status line and headers, skipping interim (1xx) responses.
    async fn read_head(&mut self, head: bool) -> Result<(u16, Framing, bool), Failure> {
        loop {
            match parse_head(&self.buf, head)? {
                Some((used, None)) => self.buf.advance(used),
                Some((used, Some(parsed))) => {
                    self.buf.advance(used);
                    return Ok(parsed);
                }
                None => self.fill_or_reset().await?,
            }
        }
    }

    async fn read_exact_body(
        &mut self,
        mut remaining: u64,
        body: &mut Option<BytesMut>,
    ) -> Result<(), Failure> {
        loop {
            let want = usize::try_from(remaining).unwrap_or(usize::MAX);
            remaining -= take_into(&mut self.buf, want, body) as u64;
            if remaining == 0 {
                return Ok(());
            }
            self.fill_or_reset().await?;
        }
    }

    async fn read_chunked(&mut self, body: &mut Option<BytesMut>) -> Result<(), Failure> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.fill_or_reset().await?,
                    Err(_) => return Err(Failure::Other),
                }
            };
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    match self.buf.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.buf.advance(2);
                            return Ok(());
                        }
                        Some(end) => self.buf.advance(end + 2),
                        None => self.fill_or_reset().await?,
                    }
                }
            }
            self.read_exact_body(size, body).await?;
            while self.buf.len() < 2 {
                self.fill_or_reset().await?;
            }
            if &self.buf[..2] != b"\r\n" {
                return Err(Failure::Other);
            }
            self.buf.advance(2);
        }
    }
}

/// Parses one response head from `buf`: `None` when more bytes are needed, else the bytes
/// it used and, unless it was an interim 1xx response, (status, framing, reusable). Kept
/// synchronous so the 64 header slots never live across an await (they would make every
/// request's future 2 KiB larger, and it is moved around).
#[allow(clippy::type_complexity)]
fn parse_head(
    buf: &[u8],
    head: bool,
) -> Result<Option<(usize, Option<(u16, Framing, bool)>)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(Failure::Other),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Other),
    };
    let status = response.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
        return Ok(Some((len, None)));
    }
    let http10 = response.version == Some(0);
    let mut length: Option<u64> = None;
    let mut transfer_encoding = None;
    let mut close = http10;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // A list of equal values is one length; different values are an error.
            for part in h.value.split(|&b| b == b',') {
                let text = std::str::from_utf8(part).map_err(|_| Failure::Other)?;
                let n = text.trim().parse::<u64>().map_err(|_| Failure::Other)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::Other);
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(ends_with_chunked(h.value));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                close = true;
            } else if http10 && contains_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length, a final coding other than
    // chunked means "until close", and a message with both must not reuse the connection.
    if transfer_encoding.is_some() && length.is_some() {
        close = true;
    }
    let framing = if head || status == 204 || status == 304 || status == 101 {
        Framing::None
    } else if let Some(chunked) = transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        close = true;
    }
    Ok(Some((
        len,
        Some((status, framing, !close && status != 101)),
    )))
}

/// Moves up to `max` buffered bytes out of `buf`, into `body` when it is kept.
fn take_into(buf: &mut BytesMut, max: usize, body: &mut Option<BytesMut>) -> usize {
    let n = buf.len().min(max);
    if let Some(body) = body {
        body.extend_from_slice(&buf[..n]);
    }
    buf.advance(n);
    n
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

fn ends_with_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Runs one exchange against a peer that answers `answer` (in `pieces`) and returns the
    /// response, or the failure.
    async fn exchange(answer: &[u8], pieces: usize, head: bool) -> Result<Response, ExchangeError> {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let answer = answer.to_vec();
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await.unwrap();
            let step = answer.len().div_ceil(pieces.max(1)).max(1);
            for piece in answer.chunks(step) {
                server.write_all(piece).await.unwrap();
                server.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            // Dropping our end is the end of stream the client may be reading up to.
            drop(server);
        });
        let mut conn = H1::new(client);
        let result = conn
            .exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", head, true)
            .await;
        drop(conn);
        let _ = peer.await;
        result
    }

    fn body(r: &Response) -> &[u8] {
        r.body.as_deref().unwrap_or_default()
    }

    #[tokio::test]
    async fn framings() {
        for pieces in [1, 3, 50] {
            let r = exchange(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                pieces,
                false,
            )
            .await
            .unwrap();
            assert_eq!((r.status, body(&r), r.reusable), (200, &b"hello"[..], true));

            let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
            let r = exchange(chunked, pieces, false).await.unwrap();
            assert_eq!(
                (r.status, body(&r), r.reusable),
                (201, &b"hello world"[..], true)
            );

            let close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end";
            let r = exchange(close, pieces, false).await.unwrap();
            assert_eq!((body(&r), r.reusable), (&b"until the end"[..], false));

            let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
            let r = exchange(interim, pieces, false).await.unwrap();
            assert_eq!((r.status, body(&r), r.reusable), (204, &b""[..], true));

            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
            let r = exchange(head, pieces, true).await.unwrap();
            assert_eq!((r.status, body(&r)), (200, &b""[..]));

            let old = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
            assert!(!exchange(old, pieces, false).await.unwrap().reusable);

            let same = b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok";
            assert_eq!(body(&exchange(same, pieces, false).await.unwrap()), b"ok");

            let both = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
            let r = exchange(both, pieces, false).await.unwrap();
            assert_eq!((body(&r), r.reusable), (&b"ok"[..], false));

            let gzip_only =
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 1\r\n\r\nabc";
            let r = exchange(gzip_only, pieces, false).await.unwrap();
            assert_eq!((body(&r), r.reusable), (&b"abc"[..], false));
        }
    }

    #[tokio::test]
    async fn broken_responses_are_failures_of_their_kind() {
        let e = exchange(b"", 1, false).await.unwrap_err();
        assert_eq!(
            e,
            ExchangeError {
                failure: Failure::Reset,
                nothing_received: true
            }
        );
        let e = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            1,
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            ExchangeError {
                failure: Failure::Reset,
                nothing_received: false
            }
        );
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab";
        let e = exchange(two, 1, false).await.unwrap_err();
        assert_eq!(e.failure, Failure::Other, "different lengths are an error");
        let e = exchange(b"NOT HTTP\r\n\r\n", 1, false).await.unwrap_err();
        assert_eq!(e.failure, Failure::Other);
        let e = exchange(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            1,
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e.failure, Failure::Other);
    }
}
