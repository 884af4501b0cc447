//! Update sources: a streamed HTTP body decoded into updates for a [`Dispatcher`].
//!
//! Two wire formats are read: server-sent events ([`Format::Sse`], one JSON document in
//! the `data` of each event) and newline-delimited JSON ([`Format::Ndjson`], one
//! document per line). [`decoded`] turns a body into a stream of any deserializable
//! update; [`build_updates`](crate::build_updates) is it for coder's build updates.
//!
//! A source ends when the body ends, when reading it fails, or at the first update it
//! cannot decode (what came before is still delivered): the runners waiting on the
//! dispatcher then read "update stream closed", as coder's do when its watch fails.
//!
//! [`Dispatcher`]: crate::Dispatcher

use std::collections::VecDeque;

use futures_util::{Stream, StreamExt, stream};
use serde::de::DeserializeOwned;

/// How a body carries its updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Server-sent events. With `event` set, only events of that name (and unnamed
    /// ones) are updates; comments and other events are skipped.
    Sse {
        /// The event name updates come under, e.g. `build`.
        event: Option<String>,
    },
    /// One JSON document per line; blank lines are skipped.
    Ndjson,
}

/// Decodes `body` into updates of type `T`; see the module docs for when it ends.
pub fn decoded<T, S, B, E>(body: S, format: Format) -> impl Stream<Item = T> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
{
    let decoder = Decoder::new(format);
    let state = (Box::pin(body), decoder, VecDeque::<String>::new(), false);
    stream::unfold(
        state,
        |(mut body, mut decoder, mut ready, mut broken)| async move {
            loop {
                if let Some(text) = ready.pop_front() {
                    match serde_json::from_str::<T>(&text) {
                        Ok(update) => return Some((update, (body, decoder, ready, broken))),
                        Err(_) => {
                            // What came before a bad update has been delivered: end here.
                            ready.clear();
                            broken = true;
                        }
                    }
                }
                if broken {
                    return None;
                }
                let Some(Ok(chunk)) = body.next().await else {
                    return None;
                };
                ready.extend(decoder.push(chunk.as_ref()));
            }
        },
    )
}

/// Splits a body into the texts of its updates, one chunk at a time.
#[derive(Debug)]
struct Decoder {
    format: Format,
    /// The unfinished last line.
    line: Vec<u8>,
    /// SSE: the `event:` field of the event being read.
    name: String,
    /// SSE: its `data:` lines, joined by `\n`.
    data: Option<String>,
}

impl Decoder {
    fn new(format: Format) -> Self {
        Decoder {
            format,
            line: Vec::new(),
            name: String::new(),
            data: None,
        }
    }

    /// Feeds `chunk`; returns the update texts it completed.
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &byte in chunk {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            let done = match self.format {
                Format::Ndjson => (!line.trim().is_empty()).then(|| line.into_owned()),
                Format::Sse { .. } => self.sse_line(&line),
            };
            out.extend(done);
        }
        out
    }

    fn sse_line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            let name = std::mem::take(&mut self.name);
            let data = self.data.take()?;
            let Format::Sse { event } = &self.format else {
                return None;
            };
            let wanted = match event {
                Some(event) => name.is_empty() || name == *event,
                None => true,
            };
            return wanted.then_some(data);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_owned(),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Debug;

    use serde_json::{Value, json};

    use super::*;

    /// Feeds `body` in chunks of every size; all must decode to `want`.
    pub(crate) async fn check<T>(body: &str, format: Format, want: &[T])
    where
        T: DeserializeOwned + PartialEq + Debug + Send + 'static,
    {
        for size in 1..=body.len() {
            let chunks: Vec<Result<Vec<u8>, String>> = body
                .as_bytes()
                .chunks(size)
                .map(|c| Ok(c.to_vec()))
                .collect();
            let got: Vec<T> = decoded(stream::iter(chunks), format.clone())
                .collect()
                .await;
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    #[tokio::test]
    async fn ndjson_lines_are_updates_until_a_bad_one() {
        let body = "{\"a\":1}\n\n{\"a\":2}\r\nnope\n{\"a\":3}\n";
        let want: [Value; 2] = [json!({"a": 1}), json!({"a": 2})];
        check(body, Format::Ndjson, &want).await;
    }

    #[tokio::test]
    async fn sse_events_are_filtered_by_name_when_one_is_given() {
        let body = ": hi\n\nevent: ping\ndata: {\"p\":0}\n\ndata: {\"a\":1}\n\nevent: build\ndata: {\"a\":\ndata: 2}\n\n";
        let build = Format::Sse {
            event: Some("build".into()),
        };
        check(body, build, &[json!({"a": 1}), json!({"a": 2})]).await;
        let all = Format::Sse { event: None };
        check(
            body,
            all,
            &[json!({"p": 0}), json!({"a": 1}), json!({"a": 2})],
        )
        .await;
    }
}
