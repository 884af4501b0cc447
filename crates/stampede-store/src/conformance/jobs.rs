//! The job half of the conformance suite: ids, round trips, listing and state changes.

use futures_util::future::join_all;

use super::{all_events, create, ids, must, new_event, new_job};
use crate::{EventStore, JobId, JobQuery, JobRecord, NewJob, StoreError};

/// Job ids start at 1 and increase; ids never assigned read as `None`.
pub async fn ids_increase(store: &dyn EventStore) {
    let mut assigned = Vec::new();
    for i in 0..5 {
        assigned.push(create(store, new_job(&format!("job-{i}"), "started", "s", &[])).await);
    }
    assert_eq!(assigned[0], 1, "the first job id");
    assert!(
        assigned.windows(2).all(|pair| pair[0] < pair[1]),
        "job ids {assigned:?}"
    );
    for missing in [0, 999, u64::MAX] {
        assert_eq!(must(store.job(missing).await, "job"), None, "job {missing}");
    }
}

/// Every field comes back as written: unicode, quotes, SQL-looking text, extreme times,
/// empty values (an empty project too), tags in order and a 1 MiB descriptor.
pub async fn job_round_trip(store: &dyn EventStore) {
    let odd = "Zürich — 東京 — 🚀 — עברית — e\u{301} — \"quoted\" \\ 'single' \n\t$1 ?; DROP TABLE jobs; --";
    let large: String = "{\"k\":\"välue 🚀\"},".repeat(1 << 16);
    assert!(
        large.len() >= 1 << 20,
        "the large descriptor is at least 1 MiB"
    );
    let jobs = [
        NewJob {
            name: odd.to_owned(),
            requestor: "ünïcödé".to_owned(),
            server_id: "server-ß".to_owned(),
            requested_at_us: i64::MIN,
            descriptor: large,
            extended_descriptor: format!("{{\"x\":{odd:?}}}"),
            tags: vec![
                "zeta".into(),
                "alpha".into(),
                "_internal".into(),
                "日本".into(),
            ],
            state: "started".to_owned(),
            project: odd.to_owned(),
        },
        NewJob {
            requested_at_us: i64::MAX,
            project: String::new(),
            ..NewJob::default()
        },
        new_job("plain", "paused", "s1", &["a"]),
    ];
    for job in jobs {
        let id = create(store, job.clone()).await;
        let stored =
            must(store.job(id).await, "job").unwrap_or_else(|| panic!("job {id} was not found"));
        let expected = JobRecord {
            id,
            name: job.name,
            requestor: job.requestor,
            server_id: job.server_id,
            requested_at_us: job.requested_at_us,
            descriptor: job.descriptor,
            extended_descriptor: job.extended_descriptor,
            tags: job.tags,
            state: job.state,
            project: job.project,
        };
        assert!(stored == expected, "job {id} differs after a round trip");
    }
}

/// Text with a NUL character is refused by every backend (PostgreSQL cannot store it), and
/// nothing is written.
pub async fn text_with_nul_is_refused(store: &dyn EventStore) {
    let bad = NewJob {
        descriptor: "a\0b".to_owned(),
        ..new_job("nul", "started", "s", &[])
    };
    let error = store
        .create_job(bad)
        .await
        .expect_err("a descriptor with NUL must be refused");
    assert!(matches!(error, StoreError::NulInText { .. }), "{error}");
    assert_eq!(
        must(store.list_jobs(&JobQuery::default()).await, "list_jobs"),
        []
    );
    let id = create(store, new_job("ok", "started", "s", &[])).await;
    let events = [new_event(id, "ok", "{}"), new_event(id, "bad", "\"\0\"")];
    let error = store
        .append(&events)
        .await
        .expect_err("a payload with NUL must be refused");
    assert!(matches!(error, StoreError::NulInText { .. }), "{error}");
    assert_eq!(
        all_events(store, id).await,
        [],
        "a refused batch wrote events"
    );
    for (from, to) in [(None, "x\0"), (Some("started\0"), "x")] {
        let error = store
            .set_state(id, from, to)
            .await
            .expect_err("a state with NUL must be refused");
        assert!(matches!(error, StoreError::NulInText { .. }), "{error}");
    }
    let state = must(store.job(id).await, "job").map(|job| job.state);
    assert_eq!(
        state.as_deref(),
        Some("started"),
        "a refused state change applied"
    );
}

/// Listing filters by states (any of), tags (all of) and server, by id ascending, and pages
/// with `after_id` and `limit` (0 = no limit).
pub async fn list_filters(store: &dyn EventStore) {
    let fixtures = [
        ("started", "s1", &["a", "b"][..]),
        ("completed", "s1", &["a"][..]),
        ("failed", "s2", &["b"][..]),
        ("started", "s2", &["a", "b", "c"][..]),
        ("paused", "s1", &[][..]),
        ("started", "s1", &["c"][..]),
    ];
    for (i, (state, server, tags)) in fixtures.into_iter().enumerate() {
        let id = create(store, new_job(&format!("job-{i}"), state, server, tags)).await;
        assert_eq!(id, i as JobId + 1);
    }
    let none: &[&str] = &[];
    /// States, tags, server, after_id, limit => the ids listed.
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Option<&'a str>,
        Option<JobId>,
        u32,
        &'a [JobId],
    );
    let cases: [Case<'_>; 14] = [
        (none, none, None, None, 0, &[1, 2, 3, 4, 5, 6]),
        (&["started"], none, None, None, 0, &[1, 4, 6]),
        (&["started", "failed"], none, None, None, 0, &[1, 3, 4, 6]),
        (&["nope"], none, None, None, 0, &[]),
        (none, &["a"], None, None, 0, &[1, 2, 4]),
        (none, &["a", "b"], None, None, 0, &[1, 4]),
        (none, &["c", "b", "a"], None, None, 0, &[4]),
        (none, &["a", "zzz"], None, None, 0, &[]),
        (none, none, Some("s2"), None, 0, &[3, 4]),
        (&["started"], &["a"], Some("s1"), None, 0, &[1]),
        (none, none, None, Some(3), 0, &[4, 5, 6]),
        (none, none, None, Some(3), 2, &[4, 5]),
        (&["started"], none, None, None, 1, &[1]),
        (none, none, None, Some(u64::MAX), 0, &[]),
    ];
    let strings = |items: &[&str]| items.iter().map(|&s| s.to_owned()).collect();
    for (states, tags, server_id, after_id, limit, expected) in cases {
        let query = JobQuery {
            states: strings(states),
            tags: strings(tags),
            server_id: server_id.map(str::to_owned),
            after_id,
            limit,
            ..JobQuery::default()
        };
        let listed = must(store.list_jobs(&query).await, "list_jobs");
        assert_eq!(ids(&listed), expected, "{query:?}");
        for job in listed {
            let stored = must(store.job(job.id).await, "job");
            assert_eq!(
                Some(job),
                stored,
                "a listed job differs from the stored one"
            );
        }
    }
    let mut paged = Vec::new();
    let mut after_id = None;
    loop {
        let query = JobQuery {
            after_id,
            limit: 4,
            ..JobQuery::default()
        };
        let page = must(store.list_jobs(&query).await, "list_jobs");
        let Some(last) = page.last() else { break };
        after_id = Some(last.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, [1, 2, 3, 4, 5, 6], "paging by 4");
}

/// `set_state` is a compare-and-set: it applies only when the state matches (or
/// unconditionally without `from`), and a missing job is [`StoreError::NotFound`].
pub async fn set_state_is_compare_and_set(store: &dyn EventStore) {
    let id = create(store, new_job("cas", "started", "s", &["t"])).await;
    let state = async || must(store.job(id).await, "job").map(|job| job.state);
    let steps: [(Option<&str>, &str, bool, &str); 5] = [
        (Some("started"), "paused", true, "paused"),
        (Some("started"), "completed", false, "paused"),
        (Some("paused"), "paused", true, "paused"),
        (None, "cancelling", true, "cancelling"),
        (Some(""), "x", false, "cancelling"),
    ];
    for (from, to, changed, after) in steps {
        let result = must(store.set_state(id, from, to).await, "set_state");
        assert_eq!(result, changed, "set_state({from:?} -> {to})");
        assert_eq!(
            state().await.as_deref(),
            Some(after),
            "state after set_state({from:?} -> {to})"
        );
    }
    let listed = must(
        store
            .list_jobs(&JobQuery {
                states: vec!["cancelling".into()],
                ..JobQuery::default()
            })
            .await,
        "list_jobs",
    );
    assert_eq!(ids(&listed), [id], "listing by the new state");
    for (missing, from) in [
        (999, Some("started")),
        (999, None),
        (0, None),
        (u64::MAX, None),
    ] {
        match store.set_state(missing, from, "failed").await {
            Err(StoreError::NotFound(reported)) => assert_eq!(reported, missing),
            other => panic!("set_state of missing job {missing} gave {other:?}"),
        }
    }
}

/// Of several concurrent compare-and-sets from the same state, exactly one wins.
pub async fn set_state_race_has_one_winner(store: &dyn EventStore) {
    let id = create(store, new_job("race", "started", "s", &[])).await;
    let targets: Vec<String> = (0..8).map(|i| format!("winner-{i}")).collect();
    let attempts = targets
        .iter()
        .map(|to| store.set_state(id, Some("started"), to));
    let results: Vec<bool> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| must(r, "set_state"))
        .collect();
    let winners: Vec<&String> = targets
        .iter()
        .zip(&results)
        .filter(|(_, won)| **won)
        .map(|(to, _)| to)
        .collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let state = must(store.job(id).await, "job").map(|job| job.state);
    assert_eq!(
        state.as_ref(),
        Some(winners[0]),
        "the winner's state is the job's state"
    );
}

/// `append_state` writes the event and the state column together, and a missing job gets
/// neither.
pub async fn append_state_writes_the_event_and_the_column_together(store: &dyn EventStore) {
    let id = create(store, new_job("atomic", "unknown", "s", &[])).await;
    let started = new_event(id, "JobStateStarted", "{}");
    let seq = must(
        store.append_state(&started, "started").await,
        "append_state",
    );
    let job = must(store.job(id).await, "job").expect("the job");
    assert_eq!(job.state, "started");
    let events = all_events(store, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].seq, events[0].name.as_str()),
        (seq, "JobStateStarted")
    );
    let later = must(
        store
            .append_state(&new_event(id, "JobStateCompleted", "{}"), "completed")
            .await,
        "append_state",
    );
    assert!(later > seq, "sequence numbers increase");
    assert_eq!(
        must(store.job(id).await, "job").map(|j| j.state).as_deref(),
        Some("completed")
    );
    let missing = new_event(999, "JobStateStarted", "{}");
    match store.append_state(&missing, "started").await {
        Err(StoreError::NotFound(999)) => {}
        other => panic!("append_state for a missing job gave {other:?}"),
    }
    assert!(all_events(store, 999).await.is_empty(), "nothing written");
    match store
        .append_state(&new_event(id, "x", "{}"), "bad\0state")
        .await
    {
        Err(StoreError::NulInText { .. }) => {}
        other => panic!("a NUL in the state gave {other:?}"),
    }
    assert_eq!(
        all_events(store, id).await.len(),
        2,
        "nothing written for a refused state"
    );
}
