//! ConTest v1.0.1's sample descriptors (seeds-spec §2.2) behave as in ConTest: the two it
//! rejects are rejected with its reasons, the others run with its plugins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stampede_api::job::{JobState, events};
use stampede_job::Job;
use stampede_job::runner::{JobControl, JobOutcome};

use crate::{events as read_events, local, memory, names, registry, run};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contest")
}

fn parse(file: &str) -> Result<Job, String> {
    let path = samples().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    Job::parse(&text, file, &samples(), &registry()).map_err(|e| e.to_string())
}

#[test]
fn start_literal_is_refused_for_its_label_with_a_space() {
    let err = parse("start-literal.json").unwrap_err();
    assert!(
        err.contains("'some label' doesn't match variable name format"),
        "{err}"
    );
    assert!(err.contains("TestDescriptors[0]"), "{err}");
}

#[test]
fn a_step_without_a_label_is_refused() {
    let err = parse("start-lspci.json").unwrap_err();
    assert!(
        err.contains("step has no label, but it is mandatory (step: cmd)"),
        "{err}"
    );
}

#[test]
fn start_literal_with_a_valid_label_renders_go_templates() {
    let text = std::fs::read_to_string(samples().join("start-literal.json"))
        .unwrap()
        .replace("some label", "somelabel")
        .replace("\"Runs\": 3", "\"Runs\": 1");
    let job = Job::parse(&text, "start-literal.json", &samples(), &registry()).unwrap();
    assert_eq!(job.tags, ["test", "csv"]);
    assert_eq!(job.run_interval, Duration::from_secs(3));
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job, &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let all = read_events(&store, id).await;
        // ConTest's cmd writes no output events unless emit_stdout is set; CmdStart shows
        // the rendered arguments.
        assert!(!all.iter().any(|e| e.name == events::CMD_STDOUT));
        let start = all.iter().find(|e| e.name == events::CMD_START).unwrap();
        let start: serde_json::Value =
            serde_json::from_str(start.payload.as_deref().unwrap()).unwrap();
        assert_eq!(
            start["Args"],
            serde_json::json!(["Title=Example.Org, ToUpper=EXAMPLE.ORG"])
        );
        let reports = &status.runs[0].reports;
        assert_eq!(reports.len(), 2);
        assert!(reports[0].success, "{reports:?}");
        assert_eq!(
            reports[0].data,
            serde_json::json!(["Test Literal test passes success criteria: 100.00% > 80.00%"])
        );
        assert_eq!(reports[1].data, "I did nothing");
        assert_eq!(
            status.final_reports[0].data,
            "I did nothing at the end, all good"
        );
    });
}

#[test]
fn start_json_fetches_steps_by_uri_and_hosts_from_csv() {
    let job = parse("start.json").unwrap();
    assert_eq!(job.tests.len(), 2);
    assert_eq!(job.tests[0].steps.len(), 3, "fetched at submit time");
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job, &JobControl::default()).await;
        assert_eq!(
            outcome,
            JobOutcome::Completed,
            "randecho failures are not job failures"
        );
        assert_eq!(status.state, JobState::Completed);
        let run = &status.runs[0];
        assert_eq!(run.tests.len(), 2);
        let all = read_events(&store, id).await;
        for test in &run.tests {
            assert_eq!(
                test.targets.len(),
                4,
                "MinNumberDevices 2, MaxNumberDevices 4"
            );
            for target in &test.targets {
                // Each target either passed all three steps or failed at the random one.
                match &target.error {
                    None => assert_eq!(target.step.as_deref(), Some("thethirdrandecho")),
                    Some(e) => {
                        assert_eq!(target.step.as_deref(), Some("thesecondrandecho"));
                        assert!(e.contains("at random"), "{e}");
                    }
                }
                let mine: Vec<_> = all
                    .iter()
                    .filter(|e| {
                        e.test.as_deref() == Some(&test.name)
                            && e.target.as_deref() == Some(&target.target)
                    })
                    .map(|e| e.name.as_str())
                    .collect();
                assert_eq!(mine[0], events::TARGET_ACQUIRED);
                assert_eq!(mine[1], events::TARGET_IN);
                assert_eq!(*mine.last().unwrap(), events::TARGET_RELEASED);
                let verdicts = mine
                    .iter()
                    .filter(|n| [events::TARGET_SUCCEEDED, events::TARGET_FAILED].contains(n))
                    .count();
                assert_eq!(verdicts, 1, "randecho says what it decided: {mine:?}");
            }
            let passed = test.targets.iter().filter(|t| t.error.is_none()).count();
            let report = &run.reports[0];
            let line = report.data.to_string();
            assert!(line.contains(&format!("Test {}", test.name)), "{line}");
            if passed < 4 {
                assert!(!report.success, "{passed}/4 is not > 80%: {report:?}");
            }
        }
    });
}

#[test]
fn test_retry_yaml_retries_until_the_port_opens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // closed for the first attempt
    let text = std::fs::read_to_string(samples().join("test-retry.yaml"))
        .unwrap()
        .replace("[[ .WaitPort]]", &port.to_string())
        .replace("RetryInterval: \"10s\"", "RetryInterval: \"2s\"");
    let job = Job::parse(&text, "test-retry.yaml", &samples(), &registry()).unwrap();
    // The port opens during the retry interval, as ConTest's e2e test does.
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        drop(listener);
    });
    local(async {
        let store = memory().await;
        let (id, outcome, status) = run(&store, &job, &JobControl::default()).await;
        assert_eq!(outcome, JobOutcome::Completed);
        let test = &status.runs[0].tests[0];
        assert_eq!(test.attempt, 1, "the status shows the latest attempt only");
        assert!(test.targets[0].error.is_none(), "{test:?}");
        assert_eq!(test.targets[0].step.as_deref(), Some("Step3"));
        assert!(status.runs[0].reports[0].success, "=100% on the retry");
        let all = read_events(&store, id).await;
        let first: Vec<_> = all.iter().filter(|e| e.attempt == Some(0)).collect();
        let errors: Vec<_> = first
            .iter()
            .filter(|e| e.name == events::TARGET_ERR)
            .map(|e| (e.step.clone().unwrap(), e.payload.clone().unwrap()))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "Step2");
        assert!(
            errors[0].1.contains("did not answer within 500ms"),
            "{errors:?}"
        );
        assert_eq!(
            names(&all, Some("T1"))
                .iter()
                .filter(|n| **n == events::TARGET_RELEASED)
                .count(),
            2,
            "released after each attempt"
        );
    });
    opener.join().unwrap();
}
