//! The job state machine: pause during a step and during the run interval, resume from a
//! store reopened as a new process would, cancel, runs = 0, and every timeout rule.

use std::time::{Duration, Instant};

use stampede_api::job::{JobState, PausePayload, events};
use stampede_job::Job;
use stampede_job::runner::{self, JobControl, JobOutcome};

use stampede_core::{Clock, SystemClock};

use crate::{clock, events as read_events, job, local, memory, names, registry, run};

/// Pauses `control` after `after`.
fn pause_after(control: &JobControl, after: Duration) {
    let pause = control.pause.clone();
    tokio::task::spawn_local(async move {
        tokio::time::sleep(after).await;
        pause.cancel();
    });
}

/// Cancels `control` after `after`.
pub(crate) fn cancel_after(control: &JobControl, after: Duration) {
    let cancel = control.cancel.clone();
    tokio::task::spawn_local(async move {
        tokio::time::sleep(after).await;
        cancel.cancel();
    });
}

const SLEEPY: &str = r#"
name: sleepy
tests:
  - name: t
    targets: { synthetic: { count: 3 } }
    steps:
      - name: first
        echo: { text: "hello {{ target.id }}" }
      - name: nap
        sleep: { duration: 3s }
      - name: last
        exec: { command: echo, args: ["{{ steps.first.text }}"] }
"#;

/// Runs the job uninterrupted and returns its status, for comparison.
fn uninterrupted(text: &str) -> stampede_api::job::JobStatus {
    local(async {
        let store = memory().await;
        let (_, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        status
    })
}

/// What a status says, without times and sequence numbers.
fn shape(status: &stampede_api::job::JobStatus) -> Vec<String> {
    let mut out = vec![format!("{:?}", status.state)];
    for run in &status.runs {
        for test in &run.tests {
            for target in &test.targets {
                out.push(format!(
                    "run {} {} {} {:?} {:?}",
                    run.run, test.name, target.target, target.step, target.error
                ));
            }
            for step in &test.steps {
                for target in &step.targets {
                    let events: Vec<_> = target.events.iter().map(|e| e.name.clone()).collect();
                    out.push(format!(
                        "{} {} {:?} {events:?}",
                        step.label, target.target, target.error
                    ));
                }
            }
        }
        for report in &run.reports {
            out.push(format!(
                "{} {} {}",
                report.reporter, report.success, report.data
            ));
        }
    }
    out
}

#[test]
fn pause_during_a_step_then_resume_from_a_reopened_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let (id, payload) = local(async {
        let store = stampede_store::open(&url).await.unwrap();
        let control = JobControl::default();
        pause_after(&control, Duration::from_millis(2000));
        let (id, outcome, status) = run(&store, &job(SLEEPY), &control).await;
        let JobOutcome::Paused(payload) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(status.state, JobState::Paused);
        assert_eq!(payload.run, 1);
        assert_eq!(payload.test, Some(1));
        assert_eq!(payload.targets.len(), 3, "targets are kept, not released");
        let state = payload.test_runner.as_ref().unwrap();
        for target in state.targets.values() {
            assert_eq!(target.step, 1, "in the sleep");
            assert!(target.entered);
            assert!(target.step_state.is_some(), "the sleep's deadline");
            let text = target.vars["first"]["text"].as_str().unwrap();
            assert!(text.starts_with("hello target-"), "{text}");
        }
        let all = read_events(&store, id).await;
        assert!(!names(&all, None).contains(&events::TARGET_RELEASED));
        (id, payload)
    });
    // A new process: a new store handle, the job rebuilt from its stored descriptor.
    let resumed = local(async {
        let store = stampede_store::open(&url).await.unwrap();
        let record = store.job(id).await.unwrap().unwrap();
        assert_eq!(record.state, "paused");
        let job = Job::from_extended(&record.extended_descriptor, &registry()).unwrap();
        let stored: PausePayload = serde_json::from_str(
            read_events(&store, id)
                .await
                .iter()
                .rev()
                .find(|e| e.name == JobState::Paused.event())
                .unwrap()
                .payload
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(stored, payload);
        let started = Instant::now();
        let outcome = runner::run_job(
            store.clone(),
            clock(),
            id,
            &job,
            Some(stored),
            &JobControl::default(),
            &(),
        )
        .await
        .unwrap();
        assert_eq!(outcome, JobOutcome::Completed);
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the sleep went on from its deadline, not from the start"
        );
        let all = read_events(&store, id).await;
        for target in ["target-1", "target-2", "target-3"] {
            let mine = names(&all, Some(target));
            assert_eq!(
                mine,
                [
                    events::TARGET_ACQUIRED,
                    events::TARGET_IN,
                    events::TARGET_OUT,
                    events::TARGET_IN,
                    events::TARGET_OUT,
                    events::TARGET_IN,
                    events::CMD_START,
                    events::CMD_STDOUT,
                    events::CMD_END,
                    events::TARGET_OUT,
                    events::TARGET_RELEASED,
                ],
                "{target}: nothing lost, nothing twice"
            );
        }
        let states: Vec<_> = names(&all, None)
            .into_iter()
            .filter(|n| n.starts_with("JobState"))
            .collect();
        assert_eq!(
            states,
            [
                "JobStateStarted",
                "JobStatePaused",
                "JobStateStarted",
                "JobStateCompleted"
            ]
        );
        runner::job_status(&store, id, &job).await.unwrap()
    });
    assert_eq!(shape(&resumed), shape(&uninterrupted(SLEEPY)));
}

#[test]
fn pause_during_the_run_interval_stores_the_absolute_next_start() {
    let text = r#"
name: interval
runs: 2
run_interval: 2s
tests:
  - name: t
    steps:
      - name: hi
        echo: { text: hi }
"#;
    local(async {
        let store = memory().await;
        let control = JobControl::default();
        pause_after(&control, Duration::from_millis(1200));
        let before = SystemClock.now_us();
        let (id, outcome, _) = run(&store, &job(text), &control).await;
        let JobOutcome::Paused(payload) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(payload.run, 2, "the run about to start");
        assert_eq!(payload.test, None, "between runs");
        let start = payload.start_at_us.unwrap();
        assert!(
            (before + 1_900_000..before + 2_400_000).contains(&start),
            "next start {start} is about 2 s after {before}"
        );
        // Resumed at once, the job waits only what is left of the interval (about 0.8 s of
        // the 2 s).
        let resumed_at = Instant::now();
        let outcome = runner::run_job(
            store.clone(),
            clock(),
            id,
            &job(text),
            Some(payload),
            &JobControl::default(),
            &(),
        )
        .await
        .unwrap();
        assert_eq!(outcome, JobOutcome::Completed);
        let waited = resumed_at.elapsed();
        assert!(
            (Duration::from_millis(400)..Duration::from_millis(1600)).contains(&waited),
            "{waited:?}"
        );
        let all = read_events(&store, id).await;
        assert_eq!(
            names(&all, None)
                .iter()
                .filter(|n| **n == events::RUN_STARTED)
                .count(),
            2
        );
    });
}

#[test]
fn cancel_ends_the_job_and_still_releases_the_targets() {
    local(async {
        let store = memory().await;
        let control = JobControl::default();
        cancel_after(&control, Duration::from_millis(300));
        let (id, outcome, status) = run(&store, &job(SLEEPY), &control).await;
        assert_eq!(outcome, JobOutcome::Cancelled);
        assert_eq!(status.state, JobState::Cancelled);
        let all = read_events(&store, id).await;
        for target in ["target-1", "target-2", "target-3"] {
            let mine = names(&all, Some(target));
            assert_eq!(*mine.last().unwrap(), events::TARGET_RELEASED, "{mine:?}");
            assert!(
                !mine.contains(&events::CMD_START),
                "no step starts after a cancel: {mine:?}"
            );
        }
        assert!(
            status.runs[0].reports.is_empty(),
            "a cancelled run is not judged"
        );
    });
}

#[test]
fn runs_zero_repeats_until_cancelled() {
    let text = r#"
name: forever
runs: 0
run_interval: 50ms
tests:
  - name: t
    steps:
      - name: hi
        echo: { text: hi }
"#;
    local(async {
        let store = memory().await;
        let control = JobControl::default();
        cancel_after(&control, Duration::from_millis(600));
        let (_, outcome, status) = run(&store, &job(text), &control).await;
        assert_eq!(outcome, JobOutcome::Cancelled);
        assert!(status.runs.len() >= 3, "{} runs", status.runs.len());
        assert!(
            status.final_reports.is_empty(),
            "no final report for an endless job"
        );
    });
}

#[test]
fn an_acquire_timeout_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("hosts.csv");
    // A FIFO nobody writes: reading the targets never ends.
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let text = format!(
        r#"
name: stuck
tests:
  - name: t
    targets: {{ csv: {{ file: "{}" }} }}
    acquire_timeout: 300ms
    steps:
      - name: hi
        echo: {{ text: hi }}
"#,
        fifo.display()
    );
    // Let the blocked reader go once the job has given up on it (the runtime waits for it).
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        })
    };
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job(&text), &JobControl::default()).await;
        let JobOutcome::Failed(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.starts_with(&format!("Job {id} failed after")), "{why}");
        assert!(
            why.contains("target manager acquire timed out after 300ms"),
            "{why}"
        );
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(status.error.as_deref(), Some(why.as_str()));
    });
    writer.join().unwrap();
}

#[test]
fn an_acquire_error_fails_only_that_attempt() {
    let text = r#"
name: missing
tests:
  - name: t
    targets: { csv: { file: /nonexistent/hosts.csv } }
    retries: { count: 1 }
    steps:
      - name: hi
        echo: { text: hi }
  - name: u
    steps:
      - name: hi
        echo: { text: hi }
"#;
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert_eq!(
            outcome,
            JobOutcome::Completed,
            "an acquire error is not fatal"
        );
        let t = &status.runs[0].tests[0];
        assert_eq!(t.attempt, 1, "retried");
        assert!(
            t.acquire_error
                .as_deref()
                .unwrap()
                .contains("/nonexistent/hosts.csv")
        );
        assert!(
            status.runs[0].tests[1].targets[0].error.is_none(),
            "the next test ran"
        );
        assert!(
            !status.runs[0].reports[0].success,
            "target_success sees the failure"
        );
        let all = read_events(&store, id).await;
        assert_eq!(
            names(&all, None)
                .iter()
                .filter(|n| **n == events::TARGET_ACQUIRE_ERR)
                .count(),
            2
        );
    });
}

#[test]
fn a_step_timeout_fails_the_target_not_the_job() {
    let text = r#"
name: slow
tests:
  - name: t
    targets: { list: [{ id: a }, { id: b }] }
    steps:
      - name: wait
        exec: { command: sleep, args: ["{{ steps.pick.n }}"], timeout: 300ms }
      - name: after
        echo: { text: done }
"#;
    // `steps.pick.n` is never set: the config does not render, so both targets fail there.
    local(async {
        let store = memory().await;
        let (_, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        for target in &status.runs[0].tests[0].targets {
            let error = target.error.as_deref().unwrap();
            assert!(
                error.contains("step variable \"pick.n\" is not set"),
                "{error}"
            );
        }
    });
    let text = r#"
name: slow
tests:
  - name: t
    steps:
      - name: wait
        exec: { command: sleep, args: ["5"], timeout: 300ms }
"#;
    local(async {
        let store = memory().await;
        let started = Instant::now();
        let (_, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(outcome, JobOutcome::Completed);
        let error = status.runs[0].tests[0].targets[0].error.clone().unwrap();
        assert!(
            error.contains("did not end within 300ms and was killed"),
            "{error}"
        );
    });
}

#[test]
fn a_failed_target_goes_no_further_and_others_go_on() {
    let text = r#"
name: split
tests:
  - name: t
    targets: { list: [{ id: good }, { id: bad }] }
    steps:
      - name: check
        exec: { command: sh, args: ["-c", "test {{ target.id }} = good"] }
      - name: next
        echo: { text: "{{ target.id }}" }
"#;
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert_eq!(
            outcome,
            JobOutcome::Completed,
            "a failing test does not fail the job"
        );
        let test = &status.runs[0].tests[0];
        let good = test.targets.iter().find(|t| t.target == "good").unwrap();
        let bad = test.targets.iter().find(|t| t.target == "bad").unwrap();
        assert_eq!(good.step.as_deref(), Some("next"));
        assert_eq!(bad.step.as_deref(), Some("check"));
        assert!(
            bad.error
                .as_deref()
                .unwrap()
                .contains("exited with status 1")
        );
        let all = read_events(&store, id).await;
        let bad_events = names(&all, Some("bad"));
        let err = bad_events
            .iter()
            .position(|n| *n == events::TARGET_ERR)
            .unwrap();
        let entered = bad_events
            .iter()
            .position(|n| *n == events::TARGET_IN)
            .unwrap();
        assert!(entered < err, "TargetIn before TargetErr");
        assert_eq!(
            bad_events
                .iter()
                .filter(|n| **n == events::TARGET_IN)
                .count(),
            1
        );
        assert!(!status.runs[0].reports[0].success);
    });
}

#[test]
fn exec_output_that_is_not_utf8_is_kept_lossily() {
    let text = r#"
name: bytes
tests:
  - name: t
    steps:
      - name: latin1
        exec: { command: sh, args: ["-c", "printf 'caf\\351\\n'"] }
"#;
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        assert!(status.runs[0].tests[0].targets[0].error.is_none());
        let all = read_events(&store, id).await;
        let line = all.iter().find(|e| e.name == events::CMD_STDOUT).unwrap();
        assert_eq!(line.payload.as_deref(), Some("{\"Msg\":\"caf\u{fffd}\"}"));
    });
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let text = format!(
        r#"
name: group
tests:
  - name: t
    steps:
      - name: spawner
        exec: {{ command: sh, args: ["-c", "sleep 300 & echo $! > {}; wait"], timeout: 300ms }}
"#,
        pidfile.display()
    );
    local(async {
        let store = memory().await;
        let (_, _, status) = run(&store, &job(&text), &JobControl::default()).await;
        let error = status.runs[0].tests[0].targets[0].error.clone().unwrap();
        assert!(error.contains("was killed"), "{error}");
    });
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // The grandchild is gone (or a zombie about to be reaped by init); a SIGKILL takes a
    // moment to land on a busy machine.
    let alive = || {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        state.split_whitespace().nth(2).is_some_and(|s| s != "Z")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "sleep {pid} outlived its group");
}

#[test]
fn a_step_timeout_stops_the_step_and_fails_the_target() {
    let text = r#"
name: step-timeout
tests:
  - name: t
    targets: { list: [{ id: a }, { id: b }] }
    steps:
      - name: nap
        sleep: { duration: 5s }
        timeout: 200ms
      - name: after
        echo: { text: never }
"#;
    local(async {
        let store = memory().await;
        let started = Instant::now();
        let (_, outcome, status) = run(&store, &job(text), &JobControl::default()).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(outcome, JobOutcome::Completed);
        for target in &status.runs[0].tests[0].targets {
            assert_eq!(target.step.as_deref(), Some("nap"));
            let error = target.error.as_deref().unwrap();
            assert!(
                error.contains("did not end within its timeout (200ms)"),
                "{error}"
            );
        }
    });
}
