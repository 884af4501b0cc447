//! `GET /v1/jobs/{id}/events/stream`: live events as server-sent events, read by a small
//! SSE client over a real connection.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use serde_json::Value;

use super::{Fixture, SLOW, call, on_every_backend};

on_every_backend!(
    a_stream_follows_a_job_to_its_end_with_the_store_sequence_numbers,
    a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing,
    a_stream_ends_when_the_job_pauses_and_a_resumed_job_streams_on,
    a_shutdown_ends_open_streams,
);

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// An open event stream.
struct Stream {
    body: Incoming,
    buffer: String,
}

/// Opens the stream at `path`: its status, and the stream when it is 200.
async fn open(
    addr: SocketAddr,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<Stream>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .header("accept", "text/event-stream")
        .header("authorization", format!("Token {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "text/event-stream");
    let stream = Stream {
        body: response.into_body(),
        buffer: String::new(),
    };
    (status, Some(stream))
}

impl Stream {
    /// The next event, or `None` when the server ended the stream. Comments (keep-alives)
    /// are skipped.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(20), self.body.frame())
                .await
                .expect("the stream stalled for 20 s");
            match frame {
                None => {
                    assert!(
                        self.buffer.trim().is_empty(),
                        "a torn event: {:?}",
                        self.buffer
                    );
                    return None;
                }
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// Every event until the server ends the stream.
    async fn rest(&mut self) -> Vec<Sse> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

/// An event block; `None` for one with only comments.
fn parse(block: &str) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in block
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
    {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().unwrap()),
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    let id = id?;
    Some(Sse {
        id,
        event: event.expect("every event is named"),
        data: serde_json::from_str(&data.join("\n")).unwrap(),
    })
}

/// Checks what every stream must hold: ids strictly increase, and each event's data is
/// the stored event its id and name say.
fn check(events: &[Sse]) {
    for pair in events.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids not increasing: {pair:?}");
    }
    for event in events {
        assert_eq!(event.data["seq"], event.id, "{event:?}");
        assert_eq!(event.data["name"], event.event.as_str(), "{event:?}");
    }
}

fn ids(events: &[Sse]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

async fn a_stream_follows_a_job_to_its_end_with_the_store_sequence_numbers(f: &Fixture) {
    let id = f.submit(SLOW).await;
    let path = format!("/v1/jobs/{id}/events/stream");
    let (status, stream) = open(f.addr(), &path, &f.token, &[]).await;
    assert_eq!(status, 200);
    let events = stream.unwrap().rest().await;
    check(&events);
    assert_eq!(events.first().unwrap().event, "JobStateStarted");
    assert_eq!(events.last().unwrap().event, "JobStateCompleted");
    assert_eq!(ids(&events), f.seqs(id).await);
    // The job's nap came between events: the stream waited for the later ones.
    let napped = events.windows(2).any(|p| {
        p[1].data["at_us"].as_i64().unwrap() - p[0].data["at_us"].as_i64().unwrap() > 1_000_000
    });
    assert!(napped, "{events:?}");

    // `?after=` starts after that event; after the final one there is nothing more: 204.
    let third = events[2].id;
    let (_, stream) = open(f.addr(), &format!("{path}?after={third}"), &f.token, &[]).await;
    assert_eq!(ids(&stream.unwrap().rest().await), ids(&events[3..]));
    let last = events.last().unwrap().id.to_string();
    let (status, _) = open(f.addr(), &format!("{path}?after={last}"), &f.token, &[]).await;
    assert_eq!(status, 204);

    // Like every job call: a token, of the job's project, and a readable cursor.
    let none = call(f.addr(), "GET", &path, None, b"", &[]).await;
    assert_eq!(none.status, 401);
    let stranger = super::create_token(&f.store, "stranger", "elsewhere")
        .await
        .unwrap();
    let (status, _) = open(f.addr(), &path, &stranger, &[]).await;
    assert_eq!(status, 404);
    let bad = f.send("GET", &path, "", &[("last-event-id", "x")]).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID")
    );
    let bad = f.get(&format!("{path}?after=-1")).await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].clone()),
        (400, 400.into())
    );
}

async fn a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(f: &Fixture) {
    let id = f.submit(SLOW).await;
    let path = format!("/v1/jobs/{id}/events/stream");
    let (_, stream) = open(f.addr(), &path, &f.token, &[]).await;
    let mut stream = stream.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(stream.next().await.unwrap());
    }
    drop(stream);
    // An EventSource reconnects to the same URL, here with a stale `?after=`: the header
    // wins.
    let last = seen.last().unwrap().id.to_string();
    let (_, stream) = open(
        f.addr(),
        &format!("{path}?after=0"),
        &f.token,
        &[("last-event-id", &last)],
    )
    .await;
    let rest = stream.unwrap().rest().await;
    assert!(!rest.is_empty());
    seen.extend(rest);
    check(&seen);
    assert_eq!(seen.last().unwrap().event, "JobStateCompleted");
    assert_eq!(ids(&seen), f.seqs(id).await, "a gap or a duplicate");
}

async fn a_stream_ends_when_the_job_pauses_and_a_resumed_job_streams_on(f: &Fixture) {
    let id = f.submit(SLOW).await;
    let path = format!("/v1/jobs/{id}/events/stream");
    let (_, stream) = open(f.addr(), &path, &f.token, &[]).await;
    let mut stream = stream.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/pause"), "").await.status,
        202
    );
    let mut seen = stream.rest().await;
    assert_eq!(seen.last().unwrap().event, "JobStatePaused");
    let last = seen.last().unwrap().id.to_string();
    let resume_from = [("last-event-id", last.as_str())];
    let (status, _) = open(f.addr(), &path, &f.token, &resume_from).await;
    assert_eq!(status, 204, "a paused job has nothing more to send");

    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/resume"), "").await.status,
        202
    );
    let (_, stream) = open(f.addr(), &path, &f.token, &resume_from).await;
    let rest = stream.unwrap().rest().await;
    assert_eq!(rest[0].event, "JobStateStarted");
    seen.extend(rest);
    check(&seen);
    assert_eq!(seen.last().unwrap().event, "JobStateCompleted");
    assert_eq!(ids(&seen), f.seqs(id).await);
    // From the start, the stream goes past the old pause to the end.
    let (_, stream) = open(f.addr(), &path, &f.token, &[]).await;
    assert_eq!(ids(&stream.unwrap().rest().await), ids(&seen));
}

async fn a_shutdown_ends_open_streams(f: &mut Fixture) {
    let id = f.submit(SLOW).await;
    let path = format!("/v1/jobs/{id}/events/stream");
    let (_, stream) = open(f.addr(), &path, &f.token, &[]).await;
    let mut stream = stream.unwrap();
    stream.next().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), f.server.take().unwrap().shutdown())
        .await
        .expect("the shutdown waited for the stream");
    let rest = stream.rest().await;
    assert!(
        rest.iter().all(|e| e.event != "JobStateCompleted"),
        "{rest:?}"
    );
}
