//! The dispatcher, after coder's `TestWorkspaceDispatcher*`: routing by key, buffering
//! until a runner subscribes, unknown keys dropped, every buffer closed at the end.

use std::time::Duration;

use futures_util::Stream;
use futures_util::stream;
use tokio::sync::mpsc;

use stampede_scale::{Ctx, Dispatcher, Updates, WaitError};

use crate::within;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Update {
    workspace: &'static str,
    status: &'static str,
}

fn up(workspace: &'static str, status: &'static str) -> Update {
    Update { workspace, status }
}

/// A source the test feeds by hand; dropping the sender ends it.
fn source() -> (
    mpsc::UnboundedSender<Update>,
    impl Stream<Item = Update> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|u| (u, rx)) });
    (tx, stream)
}

async fn next(updates: &mut Updates<Update>) -> Result<Update, WaitError> {
    within(Duration::from_secs(1), updates.next()).await
}

fn dispatcher(keys: &[&'static str]) -> Dispatcher<&'static str, Update> {
    Dispatcher::new(keys.iter().copied())
}

#[tokio::test]
async fn each_runner_gets_its_own_updates_in_order_then_the_close() {
    let d = dispatcher(&["workspace-1", "workspace-2", "workspace-3"]);
    let mut ws = [
        d.subscribe(&"workspace-1").unwrap(),
        d.subscribe(&"workspace-2").unwrap(),
        d.subscribe(&"workspace-3").unwrap(),
    ];
    let (tx, src) = source();
    d.start(Ctx::default(), src, |u: &Update| u.workspace)
        .unwrap();
    for u in [
        up("workspace-1", "pending"),
        up("workspace-2", "running"),
        up("workspace-3", "succeeded"),
        up("workspace-1", "succeeded"),
    ] {
        tx.send(u).unwrap();
    }
    assert_eq!(next(&mut ws[0]).await, Ok(up("workspace-1", "pending")));
    assert_eq!(next(&mut ws[1]).await, Ok(up("workspace-2", "running")));
    assert_eq!(next(&mut ws[2]).await, Ok(up("workspace-3", "succeeded")));
    assert_eq!(next(&mut ws[0]).await, Ok(up("workspace-1", "succeeded")));
    drop(tx);
    for (i, updates) in ws.iter_mut().enumerate() {
        let closed = next(updates).await;
        assert_eq!(closed, Err(WaitError::Closed), "workspace-{}", i + 1);
    }
}

#[tokio::test]
async fn updates_before_a_runner_subscribes_are_kept_and_unknown_keys_dropped() {
    let d = dispatcher(&["workspace-1", "workspace-2"]);
    let src = stream::iter([
        up("unknown-workspace", "pending"),
        up("workspace-1", "pending"),
        up("workspace-1", "succeeded"),
    ]);
    let task = d
        .start(Ctx::default(), src, |u: &Update| u.workspace)
        .unwrap();
    within(Duration::from_secs(1), task).await.unwrap(); // the source is over
    let mut late = d.subscribe(&"workspace-1").unwrap();
    assert_eq!(late.next().await, Ok(up("workspace-1", "pending")));
    assert_eq!(late.next().await, Ok(up("workspace-1", "succeeded")));
    assert_eq!(late.next().await, Err(WaitError::Closed));
    let mut quiet = d.subscribe(&"workspace-2").unwrap();
    assert_eq!(quiet.next().await, Err(WaitError::Closed));
}

#[tokio::test]
async fn a_waiting_runner_learns_that_the_stream_closed() {
    let d = dispatcher(&["workspace-1"]);
    let mut updates = d.subscribe(&"workspace-1").unwrap();
    let (tx, src) = source();
    d.start(Ctx::default(), src, |u: &Update| u.workspace)
        .unwrap();
    let waiter = tokio::spawn(async move {
        let ctx = Ctx::default().with_timeout(Duration::from_secs(5));
        updates.next_within(&ctx).await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(tx);
    let got = within(Duration::from_secs(1), waiter).await.unwrap();
    assert_eq!(got, Err(WaitError::Closed));
    assert_eq!(got.unwrap_err().to_string(), "update stream closed");
}

#[tokio::test]
async fn waiting_past_the_deadline_says_so() {
    let d = dispatcher(&["workspace-1"]);
    let mut updates = d.subscribe(&"workspace-1").unwrap();
    d.start(Ctx::default(), stream::pending(), |u: &Update| u.workspace)
        .unwrap();
    let ctx = Ctx::default().with_timeout(Duration::from_millis(20));
    let got = within(Duration::from_secs(1), updates.next_within(&ctx)).await;
    assert_eq!(got.unwrap_err().to_string(), "context deadline exceeded");
}

#[tokio::test]
async fn a_full_buffer_holds_the_source_until_read_and_a_gone_runner_does_not() {
    let d: Dispatcher<&'static str, Update> =
        Dispatcher::with_capacity(["slow", "gone", "other"], 1);
    let mut slow = d.subscribe(&"slow").unwrap();
    drop(d.subscribe(&"gone").unwrap()); // a runner that already ended
    let mut other = d.subscribe(&"other").unwrap();
    let (tx, src) = source();
    d.start(Ctx::default(), src, |u: &Update| u.workspace)
        .unwrap();
    for status in ["1", "2", "3"] {
        tx.send(up("gone", status)).unwrap();
    }
    tx.send(up("slow", "1")).unwrap();
    tx.send(up("slow", "2")).unwrap(); // the buffer of 1 is full: the source waits here
    tx.send(up("other", "1")).unwrap();
    let blocked = tokio::time::timeout(Duration::from_millis(30), other.next()).await;
    assert!(blocked.is_err(), "the source went past a full buffer");
    assert_eq!(slow.next().await, Ok(up("slow", "1")));
    let got = within(Duration::from_secs(1), other.next()).await;
    assert_eq!(got, Ok(up("other", "1")));
    assert_eq!(slow.next().await, Ok(up("slow", "2")));
}
