//! A job confined as a job server confines it: paths inside its own directory, hosts that
//! are its targets, processes only when granted, and a cancel that stops even the making
//! of a billion targets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stampede_api::job::events;
use stampede_job::Access;
use stampede_job::access::Processes;
use stampede_job::policy::Policy;
use stampede_job::runner::{JobControl, JobOutcome};

use crate::lifecycle::cancel_after;
use crate::{events as read_events, job, local, memory, registry, run};

/// `yaml` parsed and confined as a server with `policy` confines a job of `project`, in
/// `dir`.
fn confined(yaml: &str, policy: &str, dir: PathBuf) -> stampede_job::Job {
    let policy = Policy::parse(policy).unwrap();
    let grants = policy.grants("teamb");
    let files = grants.access(None, &Processes::default());
    let mut job = stampede_job::Job::parse_in(yaml, "job.yaml", &files, &registry()).unwrap();
    assert!(policy.check(&job, "teamb").is_empty(), "admitted");
    job.access = grants.access(Some(dir), &Processes::default());
    job
}

#[test]
fn a_templated_url_to_another_host_fails_the_target_when_rendered() {
    // Admitted (the host is a template), then refused per target once rendered.
    let yaml = "name: j
tests:
  - name: t
    targets: {list: [{id: '169.254', host: 127.0.0.1}]}
    steps:
      - name: meta
        http: {url: 'http://{{ target.id }}.169.254/latest'}
";
    let dir = tempfile::tempdir().unwrap();
    let job = confined(yaml, "", dir.path().to_path_buf());
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job, &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let error = status.runs[0].tests[0].targets[0]
            .error
            .clone()
            .unwrap_or_default();
        assert!(
            error.contains("169.254.169.254: not one of the job's targets"),
            "{error}"
        );
        assert!(error.contains("--allow net:169.254.169.254"), "{error}");
        let names: Vec<_> = read_events(&store, id)
            .await
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            !names.iter().any(|n| n == events::LOAD_SUMMARY),
            "no request was sent"
        );
    });
}

#[test]
fn reports_land_in_the_jobs_directory_and_processes_need_the_grant() {
    let yaml = "name: j
tests:
  - name: t
    steps: [{name: run, exec: {command: pwd}}]
reporting:
  final_reporters: [{json: {path: out/status.json}}]
";
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::default();
    let mut job = stampede_job::Job::parse_in(
        yaml,
        "job.yaml",
        &policy.grants("teamb").access(None, &Processes::default()),
        &registry(),
    )
    .unwrap();
    job.access = policy
        .grants("teamb")
        .access(Some(dir.path().to_path_buf()), &Processes::default());
    local(async {
        let store = memory().await;
        let (_, _, status) = run(&store, &job, &JobControl::default()).await;
        let error = status.runs[0].tests[0].targets[0]
            .error
            .clone()
            .unwrap_or_default();
        assert!(error.contains("may not start processes"), "{error}");
    });
    assert!(
        dir.path().join("out/status.json").is_file(),
        "inside the job's directory"
    );
    // Granted, the command runs in the job's directory.
    let granted = confined(yaml, "allow: [exec]", dir.path().to_path_buf());
    let mut granted = granted;
    granted.access = Access::confined(
        Some(dir.path().to_path_buf()),
        vec![],
        vec![],
        Some(Processes::default()),
    );
    local(async {
        let store = memory().await;
        let (id, _, status) = run(&store, &granted, &JobControl::default()).await;
        assert!(
            status.runs[0].tests[0].targets[0].error.is_none(),
            "{status:?}"
        );
        let printed = read_events(&store, id)
            .await
            .into_iter()
            .find(|e| e.name == events::CMD_STDOUT)
            .and_then(|e| e.payload)
            .unwrap_or_default();
        let real = dir.path().canonicalize().unwrap();
        assert!(printed.contains(real.to_str().unwrap()), "{printed}");
    });
}

#[test]
fn a_cancel_stops_the_making_of_a_billion_targets() {
    let job = job(
        "name: big\ntests: [{name: t, targets: {synthetic: {count: 1000000000}}, steps: [{name: s, echo: {text: hi}}]}]\n",
    );
    local(async {
        let store = memory().await;
        let control = JobControl::default();
        cancel_after(&control, Duration::from_millis(300));
        let started = Instant::now();
        let (_, outcome, _) = run(&store, &job, &control).await;
        assert_eq!(outcome, JobOutcome::Cancelled);
        // Made at once, a billion targets take minutes and about 100 GB.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    });
}
