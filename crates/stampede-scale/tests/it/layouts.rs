//! The reports, byte for byte: coder's `Test_Results` inputs for the harness results, and
//! coder's autostart `TestRunResults` inputs for the latency report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use stampede_scale::{Latency, LatencyResults, LatencyRun, Layout, Results, RunFailure, RunResult};

/// 2023-10-05T12:03:56.395813665Z, coder's `now`.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(1_696_507_436_395_813_665)
}

fn run(id: &str, error: Option<&str>, offset_ms: u64) -> (String, RunResult) {
    let full_id = format!("test-0/{id}");
    let result = RunResult {
        full_id: full_id.clone(),
        test_name: "test-0".into(),
        id: id.into(),
        logs: format!("{full_id} log line 1\n{full_id} log line 2"),
        error: error.map(RunFailure::message),
        started_at: Some(now() + Duration::from_millis(offset_ms)),
        duration: Duration::from_secs(1),
    };
    (full_id, result)
}

fn coders_results() -> Results {
    Results {
        total_runs: 10,
        total_pass: 8,
        total_fail: 2,
        elapsed: Duration::from_secs(1),
        runs: BTreeMap::from([
            run("0", Some("test-0/0 error"), 0),
            run("1", None, 333),
            run("2", Some("test-0/2 error"), 666),
        ]),
    }
}

#[test]
fn harness_text_is_coders_layout() {
    // Coder drops a log's last line when it lacks a newline; we print it.
    let want = "
== FAIL: test-0/0

\tError: test-0/0 error

\tLog:
\t\ttest-0/0 log line 1
\t\ttest-0/0 log line 2

== FAIL: test-0/2

\tError: test-0/2 error

\tLog:
\t\ttest-0/2 log line 1
\t\ttest-0/2 log line 2


Test results:
\tPass:  8
\tFail:  2
\tTotal: 10

\tTotal duration: 1s
\tAvg. duration:  300ms
";
    assert_eq!(coders_results().to_text(), want);
}

#[test]
fn harness_json_is_coders_layout() {
    // Coder's, less the stack frames `%+v` adds to an xerrors error, and with `<nil>`
    // unescaped (Go escapes `<` and `>` as \u003c and \u003e; both parse the same).
    let want = r#"{
	"total_runs": 10,
	"total_pass": 8,
	"total_fail": 2,
	"elapsed": "1s",
	"elapsed_ms": 1000,
	"runs": {
		"test-0/0": {
			"full_id": "test-0/0",
			"test_name": "test-0",
			"id": "0",
			"logs": "test-0/0 log line 1\ntest-0/0 log line 2",
			"started_at": "2023-10-05T12:03:56.395813665Z",
			"duration": "1s",
			"duration_ms": 1000,
			"error": "test-0/0 error"
		},
		"test-0/1": {
			"full_id": "test-0/1",
			"test_name": "test-0",
			"id": "1",
			"logs": "test-0/1 log line 1\ntest-0/1 log line 2",
			"started_at": "2023-10-05T12:03:56.728813665Z",
			"duration": "1s",
			"duration_ms": 1000,
			"error": "<nil>"
		},
		"test-0/2": {
			"full_id": "test-0/2",
			"test_name": "test-0",
			"id": "2",
			"logs": "test-0/2 log line 1\ntest-0/2 log line 2",
			"started_at": "2023-10-05T12:03:57.061813665Z",
			"duration": "1s",
			"duration_ms": 1000,
			"error": "test-0/2 error"
		}
	}
}
"#;
    assert_eq!(coders_results().to_json_pretty(), want);
}

fn latency_run(name: &str, error: Option<&str>, latencies: &[(&str, Duration)]) -> LatencyRun {
    LatencyRun {
        id: format!("id-{}", name.trim_start_matches("workspace-")),
        name: name.into(),
        error: error.map(Into::into),
        latencies: latencies
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    }
}

/// Coder's `TestRunResults`: trigger latencies 10/20/30 s after a 1 m schedule, one failure.
fn coders_autostart() -> LatencyResults {
    let s = Duration::from_secs;
    let ok = |name, trigger: u64| {
        let e2e = s(60 + trigger);
        latency_run(
            name,
            None,
            &[
                ("end_to_end_latency", e2e),
                ("trigger_to_completion", s(trigger)),
            ],
        )
    };
    LatencyResults::new(
        Layout::autostart(),
        vec![
            ok("workspace-1", 10),
            ok("workspace-2", 20),
            ok("workspace-3", 30),
            latency_run("workspace-4", Some("build failed"), &[]),
        ],
    )
}

#[test]
fn autostart_percentiles_are_coders() {
    let r = coders_autostart();
    assert_eq!((r.total_runs, r.successful_runs, r.failed_runs), (4, 3, 1));
    let p = r.percentiles["trigger_to_completion"];
    let twenty = Duration::from_secs(20);
    assert_eq!((p.p50, p.p95, p.p99), (twenty, twenty, twenty));
    let p = r.percentiles["end_to_end_latency"];
    assert_eq!(p.p99, Duration::from_secs(80));
}

#[test]
fn autostart_text_is_coders_layout() {
    let want = "\
Autostart Scale Test Results
=============================

Total Runs:      4
Successful:      3
Failed:          1

End-to-End Latency (Config → Completion)
-----------------------------------------
P50: 1m20s
P95: 1m20s
P99: 1m20s

Trigger to Completion Latency (Scheduled Time → Completion)
------------------------------------------------------------
P50: 20s
P95: 20s
P99: 20s

Failed Runs
-----------
- workspace-4 (id-4): build failed
";
    assert_eq!(coders_autostart().to_text(), want);
}

#[test]
fn autostart_json_is_coders_layout() {
    let want = concat!(
        r#"{"total_runs":4,"successful_runs":3,"failed_runs":1,"#,
        r#""end_to_end_latency_p50_ms":80000,"end_to_end_latency_p95_ms":80000,"#,
        r#""end_to_end_latency_p99_ms":80000,"trigger_to_completion_p50_ms":20000,"#,
        r#""trigger_to_completion_p95_ms":20000,"trigger_to_completion_p99_ms":20000,"#,
        r#""runs":["#,
        r#"{"workspace_id":"id-1","workspace_name":"workspace-1","success":true,"#,
        r#""end_to_end_latency_ms":70000,"trigger_to_completion_ms":10000},"#,
        r#"{"workspace_id":"id-2","workspace_name":"workspace-2","success":true,"#,
        r#""end_to_end_latency_ms":80000,"trigger_to_completion_ms":20000},"#,
        r#"{"workspace_id":"id-3","workspace_name":"workspace-3","success":true,"#,
        r#""end_to_end_latency_ms":90000,"trigger_to_completion_ms":30000},"#,
        r#"{"workspace_id":"id-4","workspace_name":"workspace-4","success":false,"#,
        r#""error":"build failed","end_to_end_latency_ms":0,"trigger_to_completion_ms":0}]}"#,
    );
    assert_eq!(serde_json::to_string(&coders_autostart()).unwrap(), want);
}

/// A lifecycle's own latencies: text rounds to the millisecond, JSON truncates.
fn named() -> LatencyResults {
    let layout = Layout {
        title: "Login Scale Test Results".into(),
        entity: "user".into(),
        latencies: vec![Latency::new("login", "Login (Request → Token)")],
    };
    let us = Duration::from_micros;
    LatencyResults::new(
        layout,
        vec![
            latency_run("alice", None, &[("login", us(1_234_567))]),
            latency_run("bob", None, &[("login", us(2_500))]),
            latency_run("carol", None, &[]), // succeeded without this latency: not counted
        ],
    )
}

#[test]
fn named_latencies_use_the_same_layout() {
    let want = "\
Login Scale Test Results
=========================

Total Runs:      3
Successful:      3
Failed:          0

Login (Request → Token)
------------------------
P50: 3ms
P95: 3ms
P99: 3ms

";
    assert_eq!(named().to_text(), want);
    let json: serde_json::Value = serde_json::from_str(&named().to_json_pretty()).unwrap();
    assert_eq!(json["login_p50_ms"], 2); // floor(1 * 0.5) = 0: the 2.5 ms run, truncated
    assert_eq!(json["login_p99_ms"], 2);
    assert_eq!(json["runs"][0]["user_name"], "alice");
    assert_eq!(json["runs"][0]["login_ms"], 1234);
    assert_eq!(json["runs"][2]["login_ms"], 0);
    assert!(json["runs"][0].get("error").is_none());
}

#[test]
fn no_success_prints_no_latency_block() {
    let r = LatencyResults::new(
        Layout::autostart(),
        vec![latency_run(
            "workspace-9",
            Some("create user: refused"),
            &[],
        )],
    );
    let text = r.to_text();
    assert!(!text.contains("P50"), "{text}");
    assert!(
        text.ends_with("- workspace-9 (id-9): create user: refused\n"),
        "{text}"
    );
}
