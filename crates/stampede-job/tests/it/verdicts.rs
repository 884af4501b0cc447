//! A target is never shown as passed by a load step that did not pass: failed requests
//! fail it (unless allowed), and so does a cancel that cut the step short.

use std::time::Duration;

use stampede_job::runner::{JobControl, JobOutcome};

use crate::lifecycle::cancel_after;
use crate::{job, local, memory, run};

/// The error of the only target of a one-test job's status.
fn target_error(status: &stampede_api::job::JobStatus) -> String {
    status.runs[0].tests[0].targets[0]
        .error
        .clone()
        .unwrap_or_default()
}

#[test]
fn requests_that_all_failed_fail_the_target() {
    // Port 9 is closed on loopback: every connect is refused.
    let job = job(
        "name: j\ntests:\n  - name: t\n    steps:\n      - name: l\n        load: {url: 'http://127.0.0.1:9/', rate: 20, duration: 500ms}\n",
    );
    local(async {
        let store = memory().await;
        let (_, outcome, status) = run(&store, &job, &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let error = target_error(&status);
        assert!(error.contains("requests failed"), "{error}");
        assert!(error.contains("allow_errors: true"), "{error}");
    });
}

#[test]
fn a_cancel_during_the_step_is_no_pass() {
    let job = job(
        "name: j\ntests:\n  - name: t\n    steps:\n      - name: l\n        load: {url: 'http://127.0.0.1:9/', rate: 20, duration: 20s, allow_errors: true}\n",
    );
    local(async {
        let store = memory().await;
        let control = JobControl::default();
        cancel_after(&control, Duration::from_millis(400));
        let (_, outcome, status) = run(&store, &job, &control).await;
        assert_eq!(outcome, JobOutcome::Cancelled);
        let error = target_error(&status);
        assert!(error.contains("the job was cancelled after"), "{error}");
    });
}

/// The `thresholds` reporter's verdict of a one-run job.
fn thresholds_verdict(yaml: &str) -> String {
    let job = job(yaml);
    local(async {
        let store = memory().await;
        let (_, _, status) = run(&store, &job, &JobControl::default()).await;
        let report = status.runs[0]
            .reports
            .iter()
            .find(|r| r.reporter == "thresholds")
            .expect("a thresholds verdict");
        report.data.to_string()
    })
}

#[test]
fn the_thresholds_verdict_counts_in_words() {
    let one = thresholds_verdict(
        "name: j\ntests:\n  - name: t\n    steps:\n      - name: l\n        load: {url: 'http://127.0.0.1:9/', rate: 10, duration: 200ms, allow_errors: true, thresholds: {requests: ['count>0']}}\nreporting: {run_reporters: [thresholds]}\n",
    );
    assert!(one.contains("1 threshold held in 1 load step"), "{one}");
    let none = thresholds_verdict(
        "name: j\ntests:\n  - name: t\n    steps: [{name: e, echo: {text: hi}}]\nreporting: {run_reporters: [thresholds]}\n",
    );
    assert!(
        none.contains("no load step ran: no thresholds to hold"),
        "{none}"
    );
}
