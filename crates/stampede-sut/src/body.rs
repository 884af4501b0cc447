//! The response body type: one static or owned chunk, or a long run of a shared pattern.
//!
//! A hand-written body (instead of boxing `Full` and a stream) keeps responses free of
//! allocations and lets `/bytes/{n}` serve any size from one 64 KiB static buffer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Size of the shared pattern that `/bytes/{n}` repeats.
const PATTERN_LEN: usize = 64 * 1024;

/// Printable filler: lowercase letters, a newline every 64 bytes.
static PATTERN: [u8; PATTERN_LEN] = build_pattern();

const fn build_pattern() -> [u8; PATTERN_LEN] {
    let mut out = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        out[i] = if i % 64 == 63 {
            b'\n'
        } else {
            b'a' + (i % 26) as u8
        };
        i += 1;
    }
    out
}

/// Every response body the server sends.
#[derive(Debug)]
pub(crate) enum SutBody {
    /// One chunk, sent once; `None` once sent or when empty.
    Once(Option<Bytes>),
    /// This many more bytes of [`PATTERN`], sent in chunks of at most its length.
    Repeat {
        /// Bytes still to send.
        remaining: u64,
    },
}

impl SutBody {
    /// A body holding `bytes`.
    pub(crate) fn once(bytes: Bytes) -> Self {
        SutBody::Once(if bytes.is_empty() { None } else { Some(bytes) })
    }

    /// A body of `len` pattern bytes.
    pub(crate) fn repeat(len: u64) -> Self {
        SutBody::Repeat { remaining: len }
    }
}

impl Body for SutBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = match self.get_mut() {
            SutBody::Once(chunk) => chunk.take(),
            SutBody::Repeat { remaining } if *remaining == 0 => None,
            SutBody::Repeat { remaining } => {
                let len = usize::try_from(*remaining).map_or(PATTERN_LEN, |r| r.min(PATTERN_LEN));
                *remaining -= len as u64;
                Some(Bytes::from_static(&PATTERN[..len]))
            }
        };
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SutBody::Once(chunk) => chunk.is_none(),
            SutBody::Repeat { remaining } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SutBody::Once(chunk) => {
                SizeHint::with_exact(chunk.as_ref().map_or(0, |c| c.len() as u64))
            }
            SutBody::Repeat { remaining } => SizeHint::with_exact(*remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(body: SutBody) -> Bytes {
        body.collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn repeat_sends_exactly_the_asked_length() {
        for len in [0, 1, 63, 64, 65_535, 65_536, 65_537, 200_000] {
            let body = SutBody::repeat(len);
            assert_eq!(body.size_hint().exact(), Some(len));
            let got = collect(body).await;
            assert_eq!(got.len() as u64, len);
            assert!(got.iter().all(|b| b.is_ascii_lowercase() || *b == b'\n'));
        }
    }

    #[tokio::test]
    async fn once_sends_its_chunk() {
        let body = SutBody::once(Bytes::from_static(b"ok"));
        assert!(!body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(collect(body).await, "ok");
        assert!(SutBody::once(Bytes::new()).is_end_stream());
    }
}
