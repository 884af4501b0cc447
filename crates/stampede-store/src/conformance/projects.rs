//! The project half of the conformance suite: jobs scoped by project, and idempotent job
//! creation (`create_job_once`), whose keys are scoped by project too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{create, ids, must, new_job};
use crate::{DEFAULT_PROJECT, EventStore, JobId, JobQuery, JobRecord, NewJob, StoreError};

/// `new_job` in `project`.
fn in_project(name: &str, project: &str) -> NewJob {
    NewJob {
        project: project.to_owned(),
        ..new_job(name, "started", "s", &[])
    }
}

/// Every job belongs to one project (the default one unless it says otherwise), and listing
/// by project shows only that project's jobs, combined with the other filters.
pub async fn projects_scope_jobs(store: &dyn EventStore) {
    let fixtures = [
        ("alpha", "started"),
        ("beta", "started"),
        ("alpha", "completed"),
        ("Alpha", "started"),
        ("", "started"),
    ];
    for (i, (project, state)) in fixtures.into_iter().enumerate() {
        let job = NewJob {
            state: state.to_owned(),
            ..in_project(&format!("job-{i}"), project)
        };
        let id = create(store, job).await;
        let stored = must(store.job(id).await, "job").map(|job| job.project);
        assert_eq!(stored.as_deref(), Some(project), "the project of job {id}");
    }
    let unnamed = NewJob {
        name: "no project given".to_owned(),
        ..NewJob::default()
    };
    assert_eq!(unnamed.project, DEFAULT_PROJECT, "a default job's project");
    let default_id = create(store, unnamed).await;
    let cases: [(Option<&str>, &[&str], &[JobId]); 8] = [
        (None, &[], &[1, 2, 3, 4, 5, 6]),
        (Some("alpha"), &[], &[1, 3]),
        (Some("alpha"), &["started"], &[1]),
        (Some("beta"), &[], &[2]),
        (Some("Alpha"), &[], &[4]),
        (Some(""), &[], &[5]),
        (Some(DEFAULT_PROJECT), &[], &[default_id]),
        (Some("gamma"), &[], &[]),
    ];
    for (project, states, expected) in cases {
        let query = JobQuery {
            project: project.map(str::to_owned),
            states: states.iter().map(|&state| state.to_owned()).collect(),
            ..JobQuery::default()
        };
        let listed = must(store.list_jobs(&query).await, "list_jobs");
        assert_eq!(ids(&listed), expected, "{query:?}");
        assert!(
            listed
                .iter()
                .all(|job| project.is_none_or(|project| job.project == project)),
            "a listed job is in another project: {listed:?}"
        );
    }
    let error = store
        .create_job(in_project("nul", "a\0b"))
        .await
        .expect_err("a project with NUL must be refused");
    assert!(matches!(error, StoreError::NulInText { .. }), "{error}");
}

/// The first `create_job_once` with a key creates the job; later ones with the same key in
/// the same project return its id and create nothing, whatever job they carry. Keys are
/// per project and exact (case and spaces count), and plain creations do not take keys.
pub async fn create_job_once_is_idempotent(store: &dyn EventStore) {
    let once = async |key: &str, job: NewJob| must(store.create_job_once(key, job).await, key);
    let first = in_project("first", "alpha");
    let (id, created) = once("key-1", first.clone()).await;
    assert_eq!((id, created), (1, true), "the first call with a key");
    let retry = NewJob {
        descriptor: "something else".to_owned(),
        tags: vec!["retry".to_owned()],
        ..in_project("retry", "alpha")
    };
    assert_eq!(
        once("key-1", retry.clone()).await,
        (id, false),
        "a second call"
    );
    assert_eq!(once("key-1", retry).await, (id, false), "a third call");
    let stored = must(store.job(id).await, "job");
    assert_eq!(
        stored,
        Some(JobRecord::new(id, first)),
        "a repeated call changed the job"
    );
    assert_eq!(
        ids(&must(
            store.list_jobs(&JobQuery::default()).await,
            "list_jobs"
        )),
        [id],
        "a repeated call created a job"
    );

    let plain = create(store, in_project("plain", "alpha")).await;
    let mut seen = BTreeSet::from([id, plain]);
    for (key, project) in [
        ("key-1", "beta"),
        ("KEY-1", "alpha"),
        ("key-1 ", "alpha"),
        ("", "alpha"),
        ("key-2", "alpha"),
        ("key-1", ""),
    ] {
        let (new, created) = once(key, in_project(key, project)).await;
        assert!(created, "key {key:?} in project {project:?} created no job");
        assert!(
            seen.insert(new),
            "key {key:?} in project {project:?} reused job {new}"
        );
        let again = once(key, in_project("again", project)).await;
        assert_eq!(
            again,
            (new, false),
            "key {key:?} in project {project:?} again"
        );
    }
    assert_eq!(
        once("key-1", in_project("last", "alpha")).await,
        (id, false),
        "the first key after others"
    );

    let listed = must(store.list_jobs(&JobQuery::default()).await, "list_jobs");
    assert_eq!(listed.len(), seen.len(), "jobs listed: {listed:?}");
    for (key, job) in [
        ("nul\0", in_project("ok", "alpha")),
        ("ok", in_project("ok", "\0")),
    ] {
        let error = store
            .create_job_once(key, job)
            .await
            .expect_err("a key or project with NUL must be refused");
        assert!(matches!(error, StoreError::NulInText { .. }), "{error}");
    }
}

/// Of many concurrent tasks calling `create_job_once` with the same key and project,
/// exactly one creates the job and every one gets its id; different keys and projects get
/// different jobs, and plain creations running alongside are unaffected.
pub async fn create_job_once_race_has_one_winner(store: Arc<dyn EventStore>) {
    const CALLERS: usize = 24;
    const PLAIN: usize = 4;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS + PLAIN));
    let mut callers = Vec::new();
    for i in 0..CALLERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        // Four groups: two keys in each of two projects.
        let group = (
            ["alpha", "beta"][i % 2].to_owned(),
            format!("key-{}", i / 2 % 2),
        );
        callers.push(tokio::spawn(async move {
            let job = in_project(&format!("caller-{i}"), &group.0);
            barrier.wait().await;
            let result = store.create_job_once(&group.1, job).await;
            (group, i, result)
        }));
    }
    let mut plain = Vec::new();
    for i in 0..PLAIN {
        let (store, barrier) = (store.clone(), barrier.clone());
        plain.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .create_job(in_project(&format!("plain-{i}"), "alpha"))
                .await
        }));
    }

    // group => (job id, the names of the callers that created one)
    let mut groups: BTreeMap<(String, String), (JobId, Vec<String>)> = BTreeMap::new();
    for caller in callers {
        let (group, i, result) = caller.await.expect("a create_job_once task panicked");
        let (id, created) = must(result, "create_job_once");
        let entry = groups.entry(group.clone()).or_insert((id, Vec::new()));
        assert_eq!(entry.0, id, "callers of {group:?} got different jobs");
        if created {
            entry.1.push(format!("caller-{i}"));
        }
    }
    let mut expected = BTreeSet::new();
    for task in plain {
        let id = must(
            task.await.expect("a create_job task panicked"),
            "create_job",
        );
        expected.insert(id);
    }
    assert_eq!(groups.len(), 4, "groups: {groups:?}");
    for ((project, key), (id, creators)) in &groups {
        assert_eq!(creators.len(), 1, "{project}/{key}: creators {creators:?}");
        let job = must(store.job(*id).await, "job")
            .unwrap_or_else(|| panic!("job {id} of {project}/{key} is missing"));
        assert_eq!(
            (&job.name, &job.project),
            (&creators[0], project),
            "job {id} is not its creator's"
        );
        assert!(expected.insert(*id), "job {id} was handed out twice");
    }
    let listed = must(store.list_jobs(&JobQuery::default()).await, "list_jobs");
    assert_eq!(
        ids(&listed),
        expected.into_iter().collect::<Vec<_>>(),
        "the jobs stored"
    );
}

/// Idempotency keys are durable and shared: a second handle on the same store (another
/// server) and a reopened one find the job a key created.
pub async fn job_keys_survive_reopen(store: &dyn EventStore, url: &str) {
    let (id, created) = must(
        store
            .create_job_once("durable", in_project("first", "alpha"))
            .await,
        "create_job_once",
    );
    assert!(created, "the first call with a key");
    let again = must(crate::open(url).await, "opening the store again");
    let second = must(
        again
            .create_job_once("durable", in_project("second", "alpha"))
            .await,
        "create_job_once",
    );
    assert_eq!(second, (id, false), "a second handle created the job again");
    let (other, created) = must(
        again
            .create_job_once("other", in_project("other", "alpha"))
            .await,
        "create_job_once",
    );
    assert!(created && other > id, "a new key on the second handle");
    drop(again);

    let third = must(crate::open(url).await, "reopening the store after closing");
    for (key, expected) in [("durable", id), ("other", other)] {
        let result = must(
            third
                .create_job_once(key, in_project("late", "alpha"))
                .await,
            "create_job_once",
        );
        assert_eq!(result, (expected, false), "key {key} after reopening");
    }
    let listed = must(third.list_jobs(&JobQuery::default()).await, "list_jobs");
    assert_eq!(ids(&listed), [id, other], "jobs after reopening");
}
