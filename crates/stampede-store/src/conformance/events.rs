//! The event half of the conformance suite: appends, queries, concurrency and durability.

use std::cell::Cell;
use std::collections::HashSet;

use futures_util::future::{join, join_all};

use super::{all_events, assert_increasing, create, must, new_event, new_job, seqs};
use crate::{Event, EventQuery, EventStore, JobQuery, JobRecord, NewEvent, Seq, StoreError};

/// Appends return one sequence number per event, in order, strictly increasing across
/// batches and jobs; every field of an event comes back as written (a test attempt of 0, 2
/// or `u32::MAX` as well as none).
pub async fn append_assigns_increasing_seqs(store: &dyn EventStore) {
    let a = create(store, new_job("a", "started", "s", &[])).await;
    let b = create(store, new_job("b", "started", "s", &[])).await;
    assert_eq!(
        must(store.append(&[]).await, "append of nothing"),
        Vec::<Seq>::new()
    );
    let odd = NewEvent {
        job_id: a,
        run: Some(u32::MAX),
        test: Some("tëst 🚀".into()),
        attempt: Some(u32::MAX),
        step: Some(String::new()),
        target: Some("host-1.example:22".into()),
        name: "TargetErr".into(),
        payload: Some(String::new()),
        emitted_at_us: i64::MIN,
    };
    let bare = NewEvent {
        job_id: b,
        run: None,
        attempt: None,
        name: "JobStateStarted".into(),
        emitted_at_us: i64::MAX,
        ..NewEvent::default()
    };
    let first = [
        new_event(a, "one", "{\"i\":1}"),
        odd,
        bare,
        NewEvent {
            attempt: Some(2),
            ..new_event(a, "two", "{\"i\":2}")
        },
        new_event(b, "three", "[]"),
    ];
    let first_seqs = must(store.append(&first).await, "append");
    assert_eq!(first_seqs.len(), first.len(), "one seq per event");
    assert_increasing(&first_seqs, "the seqs of one batch");
    let second = [new_event(b, "four", "{}"), new_event(a, "five", "{}")];
    let second_seqs = must(store.append(&second).await, "append");
    assert_increasing(
        &[&first_seqs[..], &second_seqs[..]].concat(),
        "the seqs of two batches",
    );

    let written: Vec<(Seq, &NewEvent)> = first_seqs
        .iter()
        .chain(&second_seqs)
        .copied()
        .zip(first.iter().chain(&second))
        .collect();
    for job_id in [a, b] {
        let expected: Vec<Event> = written
            .iter()
            .filter(|(_, event)| event.job_id == job_id)
            .map(|(seq, event)| Event::new(*seq, (*event).clone()))
            .collect();
        assert_eq!(
            all_events(store, job_id).await,
            expected,
            "the events of job {job_id}"
        );
    }
}

/// A batch with an event for a missing job (or text the store refuses) writes nothing, even
/// when it spans several statements, and later appends still get greater seqs.
pub async fn append_is_atomic(store: &dyn EventStore) {
    let id = create(store, new_job("atomic", "started", "s", &[])).await;
    let kept = must(
        store
            .append(&[new_event(id, "kept", "{}"), new_event(id, "kept", "{}")])
            .await,
        "append",
    );
    let mut long: Vec<NewEvent> = (0..10_000)
        .map(|i| new_event(id, "lost", &format!("{{\"i\":{i}}}")))
        .collect();
    long.push(new_event(999, "lost", "{}"));
    let bad_batches = [
        vec![new_event(id, "lost", "{}"), new_event(999, "lost", "{}")],
        vec![new_event(998, "lost", "{}"), new_event(id, "lost", "{}")],
        vec![
            new_event(id, "lost", "{}"),
            new_event(u64::MAX, "lost", "{}"),
        ],
        vec![new_event(0, "lost", "{}")],
        long,
    ];
    for batch in &bad_batches {
        let missing = batch
            .iter()
            .find(|event| event.job_id != id)
            .map(|event| event.job_id);
        match store.append(batch).await {
            Err(StoreError::NotFound(reported)) => {
                assert_eq!(Some(reported), missing, "the missing job named")
            }
            other => panic!(
                "a batch of {} with job {missing:?} missing gave {:?}",
                batch.len(),
                other.map(|s| s.len())
            ),
        }
        assert_eq!(
            seqs(&all_events(store, id).await),
            kept,
            "a failed batch of {} wrote events",
            batch.len()
        );
    }
    let later = must(
        store.append(&[new_event(id, "later", "{}")]).await,
        "append",
    );
    assert!(
        later[0] > kept[1],
        "a later append got seq {} after {}",
        later[0],
        kept[1]
    );
}

/// One append larger than any statement's bind limit, and a 1 MiB payload, come back whole
/// and in order, also when read through a cursor, a limit or a name filter.
pub async fn large_batches_span_statements(store: &dyn EventStore) {
    let id = create(store, new_job("large", "started", "s", &[])).await;
    let batch: Vec<NewEvent> = (0..20_000)
        .map(|i| new_event(id, "bulk", &format!("{{\"i\":{i}}}")))
        .collect();
    let assigned = must(store.append(&batch).await, "append of 20,000 events");
    assert_eq!(assigned.len(), batch.len());
    assert_increasing(&assigned, "the seqs of a large batch");
    let payload: String = "🚀ü".repeat(1 << 18);
    let big = NewEvent {
        payload: Some(payload),
        ..new_event(id, "big", "")
    };
    let big_seq = must(
        store.append(std::slice::from_ref(&big)).await,
        "append of a 1 MiB payload",
    );
    let events = all_events(store, id).await;
    assert_eq!(events.len(), batch.len() + 1);
    assert_eq!(seqs(&events[..batch.len()]), assigned, "the stored seqs");
    for (i, (event, written)) in events.iter().zip(&batch).enumerate() {
        assert_eq!(
            event.payload, written.payload,
            "event {i} of the large batch"
        );
    }
    assert_eq!(
        events[batch.len()],
        Event::new(big_seq[0], big),
        "the 1 MiB payload"
    );
    // Large reads with a cursor, a limit and a filter (a store may read in pages).
    let window = EventQuery {
        job_id: id,
        after_seq: Some(assigned[4_999]),
        limit: Some(12_000),
        ..EventQuery::default()
    };
    let found = must(store.events(&window).await, "events after a cursor");
    assert_eq!(seqs(&found), assigned[5_000..17_000], "{window:?}");
    let named = EventQuery {
        job_id: id,
        after_seq: Some(assigned[0]),
        names: vec!["big".into()],
        ..EventQuery::default()
    };
    let found = must(store.events(&named).await, "events by name");
    assert_eq!(seqs(&found), big_seq, "{named:?}");
}

/// Event queries filter by `after_seq`, names (any of) and `limit`, by seq ascending; a job
/// with no events (or no record) has none.
pub async fn events_query(store: &dyn EventStore) {
    let id = create(store, new_job("query", "started", "s", &[])).await;
    let other = create(store, new_job("other", "started", "s", &[])).await;
    let names = ["x", "y", "z"];
    let mut written = Vec::new();
    for i in 0..10 {
        let batch = [
            new_event(id, names[i % 3], &format!("{i}")),
            new_event(other, "x", "other"),
        ];
        written.push(must(store.append(&batch).await, "append")[0]);
    }
    let name_of = |seq: Seq| {
        names[written
            .iter()
            .position(|&s| s == seq)
            .expect("a written seq")
            % 3]
    };
    let pick = |keep: &dyn Fn(usize, Seq) -> bool| -> Vec<Seq> {
        written
            .iter()
            .enumerate()
            .filter(|&(i, &seq)| keep(i, seq))
            .map(|(_, &seq)| seq)
            .collect()
    };
    let strings = |items: &[&str]| items.iter().map(|&s| s.to_owned()).collect::<Vec<_>>();
    let query = |after_seq, names: &[&str], limit| EventQuery {
        job_id: id,
        after_seq,
        names: strings(names),
        limit,
    };
    let cases = [
        (query(None, &[], None), written.clone()),
        (query(Some(written[4]), &[], None), pick(&|i, _| i > 4)),
        (query(Some(0), &[], Some(3)), written[..3].to_vec()),
        (
            query(None, &["x"], None),
            pick(&|_, seq| name_of(seq) == "x"),
        ),
        (
            query(None, &["x", "z"], Some(2)),
            vec![written[0], written[2]],
        ),
        (
            query(Some(written[2]), &["y", "z"], Some(3)),
            vec![written[4], written[5], written[7]],
        ),
        (query(None, &["nope"], None), vec![]),
        (query(None, &[], Some(0)), vec![]),
        (query(Some(written[9]), &[], None), vec![]),
        (query(Some(u64::MAX), &[], None), vec![]),
    ];
    for (query, expected) in &cases {
        let found = must(store.events(query).await, "events");
        assert_eq!(seqs(&found), *expected, "{query:?}");
        assert!(
            found.iter().all(|event| event.job_id == id),
            "{query:?} returned another job's events"
        );
    }
    for missing in [0, 999, u64::MAX] {
        assert_eq!(
            all_events(store, missing).await,
            [],
            "events of missing job {missing}"
        );
    }
    let quiet = create(store, new_job("quiet", "started", "s", &[])).await;
    assert_eq!(
        all_events(store, quiet).await,
        [],
        "events of a job without events"
    );
}

/// Eight appenders writing 500 events each, in batches of 1 to 25, to two jobs, lose and
/// duplicate nothing and keep each appender's order; a reader following one job with
/// `after_seq` meanwhile sees each of its events exactly once, in order.
pub async fn concurrent_appenders(store: &dyn EventStore) {
    const APPENDERS: usize = 8;
    const EACH: usize = 500;
    let jobs = [
        create(store, new_job("a", "started", "s", &[])).await,
        create(store, new_job("b", "started", "s", &[])).await,
    ];
    let finished = Cell::new(0);
    let appender = async |task: usize| -> Vec<Seq> {
        let mut assigned = Vec::with_capacity(EACH);
        let mut size = task % 25 + 1;
        while assigned.len() < EACH {
            let start = assigned.len();
            let end = (start + size).min(EACH);
            let batch: Vec<NewEvent> = (start..end)
                .map(|i| new_event(jobs[task % 2], "e", &format!("{task}:{i}")))
                .collect();
            assigned.extend(must(store.append(&batch).await, "concurrent append"));
            size = size % 25 + 1;
            tokio::task::yield_now().await;
        }
        finished.set(finished.get() + 1);
        assigned
    };
    let follower = async || -> Vec<Event> {
        let mut seen: Vec<Event> = Vec::new();
        loop {
            let done = finished.get() == APPENDERS;
            let after_seq = seen.last().map(|event| event.seq);
            let page = EventQuery {
                job_id: jobs[0],
                after_seq,
                limit: Some(100),
                ..EventQuery::default()
            };
            let events = must(store.events(&page).await, "following events");
            if events.is_empty() && done {
                return seen;
            }
            seen.extend(events);
            tokio::task::yield_now().await;
        }
    };
    let (assigned, followed) = join(join_all((0..APPENDERS).map(appender)), follower()).await;

    let all: Vec<Seq> = assigned.iter().flatten().copied().collect();
    assert_eq!(all.len(), APPENDERS * EACH, "seqs returned");
    let distinct = all.iter().collect::<HashSet<_>>().len();
    assert_eq!(distinct, all.len(), "duplicate seqs returned");
    let mut stored = Vec::new();
    for job_id in jobs {
        let events = all_events(store, job_id).await;
        assert_eq!(events.len(), APPENDERS / 2 * EACH, "events of job {job_id}");
        assert_increasing(&seqs(&events), "stored seqs");
        for task in (0..APPENDERS).filter(|task| jobs[task % 2] == job_id) {
            let written: Vec<(Seq, String)> = (0..EACH)
                .map(|i| (assigned[task][i], format!("{task}:{i}")))
                .collect();
            let found: Vec<(Seq, String)> = events
                .iter()
                .filter_map(|event| Some((event.seq, event.payload.clone()?)))
                .filter(|(_, payload)| {
                    payload.split_once(':').map(|(t, _)| t) == Some(&*task.to_string())
                })
                .collect();
            assert!(
                found == written,
                "appender {task}'s events are missing, doubled, out of order or under other seqs"
            );
        }
        stored.push(events);
    }
    assert!(
        followed == stored[0],
        "the follower saw {} events, the store holds {}",
        followed.len(),
        stored[0].len()
    );
}

/// What a test can compare between two handles on one store.
async fn snapshot(store: &dyn EventStore) -> (Vec<JobRecord>, Vec<Vec<Event>>) {
    let jobs = must(store.list_jobs(&JobQuery::default()).await, "list_jobs");
    let mut events = Vec::new();
    for job in &jobs {
        events.push(all_events(store, job.id).await);
    }
    (jobs, events)
}

/// What one handle wrote, another handle opened on the same `url` reads (while the first is
/// open and after the second is dropped), and the other way round. Not for `memory:`, which
/// has nothing to reopen.
pub async fn reopen_reads_everything(store: &dyn EventStore, url: &str) {
    let a = create(store, new_job("durable", "started", "s1", &["x", "y"])).await;
    let b = create(store, new_job("durable too", "paused", "s2", &[])).await;
    must(
        store
            .append(&[new_event(a, "one", "{}"), new_event(b, "two", "{}")])
            .await,
        "append",
    );
    assert!(must(
        store.set_state(a, Some("started"), "completed").await,
        "set_state"
    ));
    let written = snapshot(store).await;

    let again = must(crate::open(url).await, "reopening the store");
    assert!(
        snapshot(&*again).await == written,
        "a second handle reads something else"
    );
    let c = must(
        again
            .create_job(new_job("from the second", "started", "s1", &["z"]))
            .await,
        "create_job",
    );
    assert!(c > b, "job ids keep increasing across handles");
    let more = must(
        again
            .append(&[new_event(a, "three", "{}"), new_event(c, "four", "{}")])
            .await,
        "append",
    );
    assert!(
        more[0] > seqs(&written.1[0])[0],
        "seqs keep increasing across handles"
    );
    let rewritten = snapshot(&*again).await;
    assert!(
        snapshot(store).await == rewritten,
        "the first handle does not see the second's writes"
    );
    drop(again);

    let third = must(crate::open(url).await, "reopening the store after closing");
    assert!(
        snapshot(&*third).await == rewritten,
        "a reopened store lost or changed data"
    );
}
