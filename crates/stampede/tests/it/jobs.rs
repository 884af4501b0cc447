//! `stampede run` through the job runner, `validate` and `schema`, spawning the real binary
//! against a real `stampede sut`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{BIN, Sut, stampede, summary, text};

/// Writes a job file into `dir` and returns its path.
fn write_job(dir: &Path, name: &str, yaml: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    file.display().to_string()
}

#[test]
fn a_native_job_mixing_exec_http_load_and_sleep_over_three_targets_and_two_runs() {
    let sut = Sut::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("s.json");
    let file = write_job(
        dir.path(),
        "mixed.yaml",
        &format!(
            r#"name: mixed
runs: 2
run_interval: 200ms
tests:
  - name: api
    targets:
      list:
        - {{ id: a, host: 127.0.0.1, url: "{url}/" }}
        - {{ id: b, host: 127.0.0.1, url: "{url}/bytes/10" }}
        - {{ id: c, host: 127.0.0.1, url: "{url}/status/503" }}
    steps:
      - name: hello
        exec: {{ command: sh, args: ["-c", "echo hello {{{{ target.id }}}}"] }}
      - name: probe
        http: {{ url: "{{{{ target.url }}}}" }}
      - name: nap
        sleep: {{ duration: 100ms }}
      - name: warm
        load: {{ url: "{{{{ target.url }}}}", rate: 40, duration: 500ms }}
reporting:
  run_reporters: [ {{ target_success: ">=60%" }}, thresholds ]
"#,
            url = sut.url
        ),
    );
    let out = stampede(&[
        "run",
        &file,
        "--no-progress",
        "--junit",
        junit.to_str().unwrap(),
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&json);
    assert_eq!(s["state"], "completed");
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let targets = run["tests"][0]["targets"].as_array().unwrap();
        let by_id: BTreeMap<_, _> = targets
            .iter()
            .map(|t| (t["target"].as_str().unwrap(), t))
            .collect();
        for ok in ["a", "b"] {
            assert_eq!(by_id[ok]["step"], "warm", "{ok} went through: {run}");
            assert!(by_id[ok].get("error").is_none(), "{run}");
        }
        assert_eq!(
            by_id["c"]["step"], "probe",
            "c stopped at the failing request"
        );
        let error = by_id["c"]["error"].as_str().unwrap();
        assert!(error.contains("status 503"), "{error}");
        let reports = run["reports"].as_array().unwrap();
        assert_eq!(reports[0]["success"], true, "2 of 3 is >= 60%: {reports:?}");
        assert!(
            reports[0]["data"][0]
                .as_str()
                .unwrap()
                .contains("66.67% >= 60.00%")
        );
    }
    // Two load steps per run (a and b), 20 calls scheduled each: sent or, on a busy host,
    // dropped as late, never lost.
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{steps:?}");
    for step in steps {
        assert_eq!(step["name"], "api/warm");
        let requests = &step["requests"];
        let sent = requests["total"].as_u64().unwrap();
        assert_eq!(sent + requests["dropped"].as_u64().unwrap(), 20, "{step}");
        assert_eq!(requests["ok"].as_u64().unwrap(), sent, "{step}");
        assert!(sent >= 15, "{step}");
    }
    // One JUnit file per run, one testcase per target per step, that a JUnit parser reads.
    for run in [1, 2] {
        let path = dir.path().join(format!("junit-run{run}.xml"));
        let xml = std::fs::read_to_string(&path).unwrap();
        let report = quick_junit::Report::deserialize_from_str(&xml)
            .unwrap_or_else(|e| panic!("{}: {e}\n{xml}", path.display()));
        assert_eq!(report.tests, 12, "{xml}");
        assert_eq!(report.failures, 1, "c's probe: {xml}");
        let suite = &report.test_suites[0];
        let skipped = suite
            .test_cases
            .iter()
            .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::Skipped { .. }))
            .count();
        assert_eq!(skipped, 2, "c never reached nap and warm: {xml}");
    }
}

/// An event's name, run, test, step and target.
type Stored = (
    String,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Every event of job 1 in the SQLite store at `url`, as (name, run, test, step, target).
fn stored_events(url: &str) -> Vec<Stored> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = stampede_store::open(url).await.unwrap();
        store
            .events(&stampede_store::EventQuery {
                job_id: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.run, e.test, e.step, e.target))
            .collect()
    })
}

/// What a summary says of the job, without times.
fn outcome_of(s: &Value) -> Vec<String> {
    let mut out = vec![s["state"].to_string()];
    for run in s["runs"].as_array().unwrap() {
        for test in run["tests"].as_array().unwrap() {
            for target in test["targets"].as_array().unwrap() {
                out.push(format!(
                    "run {} {} {} {} {}",
                    run["run"], test["name"], target["target"], target["step"], target["error"]
                ));
            }
        }
        for report in run["reports"].as_array().unwrap() {
            out.push(format!(
                "{} {} {}",
                report["reporter"], report["success"], report["data"]
            ));
        }
    }
    out
}

#[test]
fn sigterm_pauses_a_job_with_a_store_and_resume_finishes_it_as_if_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(
        dir.path(),
        "pausable.yaml",
        r#"name: pausable
runs: 2
run_interval: 300ms
tests:
  - name: t
    targets: { synthetic: { count: 2 } }
    steps:
      - name: before
        exec: { command: echo, args: ["before {{ target.id }}"] }
      - name: nap
        sleep: { duration: 1500ms }
      - name: after
        exec: { command: echo, args: ["after {{ target.id }}"] }
"#,
    );
    let paused_db = format!("sqlite://{}", dir.path().join("paused.db").display());
    let plain_db = format!("sqlite://{}", dir.path().join("plain.db").display());
    let first = dir.path().join("first.json");
    let child = Command::new(BIN)
        .args(["run", &file, "--no-progress", "--store", &paused_db])
        .args(["--summary-json", first.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(105), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "resume it with: stampede run --store {paused_db} --resume 1"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(summary(&first)["state"], "paused");

    let resumed = dir.path().join("resumed.json");
    let out = stampede(&[
        "run",
        "--store",
        &paused_db,
        "--resume",
        "1",
        "--no-progress",
        "--summary-json",
        resumed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let plain = dir.path().join("plain.json");
    let out = stampede(&[
        "run",
        &file,
        "--no-progress",
        "--store",
        &plain_db,
        "--summary-json",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(outcome_of(&summary(&resumed)), outcome_of(&summary(&plain)));

    // Zero lost, zero duplicated: the same events but for the pause and the second start.
    let mut interrupted = stored_events(&paused_db);
    let uninterrupted = stored_events(&plain_db);
    let pause = interrupted
        .iter()
        .filter(|e| e.0 == "JobStatePaused")
        .count();
    let starts = interrupted
        .iter()
        .filter(|e| e.0 == "JobStateStarted")
        .count();
    assert_eq!((pause, starts), (1, 2));
    let second_start = interrupted
        .iter()
        .rposition(|e| e.0 == "JobStateStarted")
        .unwrap();
    interrupted.remove(second_start);
    interrupted.retain(|e| e.0 != "JobStatePaused");
    let count = |events: &[Stored]| {
        let mut counts = BTreeMap::new();
        for e in events {
            *counts.entry(format!("{e:?}")).or_insert(0) += 1;
        }
        counts
    };
    assert_eq!(interrupted.len(), uninterrupted.len());
    assert_eq!(count(&interrupted), count(&uninterrupted));
}

#[test]
fn sigint_without_a_store_cancels_and_still_prints_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(
        dir.path(),
        "long.yaml",
        "name: long\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 60s }\n",
    );
    let child = Command::new(BIN)
        .args(["run", &file, "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(105), "{}", text(&out));
    assert!(
        text(&out).contains("job 1 (long): cancelled"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_contest_descriptor_runs_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_job(
        dir.path(),
        "contest.json",
        r#"{
    "JobName": "contest job",
    "Runs": 1,
    "TestDescriptors": [{
        "TargetManagerName": "TargetList",
        "TargetManagerAcquireParameters": {"Targets": [{"FQDN": "example.org", "ID": "1234"}]},
        "TestFetcherName": "literal",
        "TestFetcherFetchParameters": {"TestName": "Literal test", "Steps": [
            {"name": "cmd", "label": "hello", "parameters": {"executable": ["echo"], "args": ["{{ ToUpper .FQDN }}"]}},
            {"name": "sleep", "label": "nap", "parameters": {"duration": ["10ms"]}}
        ]}
    }],
    "Reporting": {"RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}]}
}"#,
    );
    let json = dir.path().join("s.json");
    let out = stampede(&[
        "run",
        &file,
        "--no-progress",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&json);
    assert_eq!(
        s["runs"][0]["reports"][0]["data"][0],
        "Test Literal test passes success criteria: 100.00% = 100.00%"
    );
}

#[test]
fn validate_lists_every_problem_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_job(
        dir.path(),
        "bad.yaml",
        r#"name: bad
tags: [ok, _internal, ok]
tests:
  - name: t
    steps:
      - name: a
        load: { url: "http://127.0.0.1:1/", rate: 0, duration: 1s }
      - name: a
        wait_port: { host: localhost, port: 0 }
      - name: b
        sleep: { duration: 1s }
        exec: { command: "true" }
"#,
    );
    let out = stampede(&["validate", &bad]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    let all = text(&out);
    for expected in [
        "tags[1]: tag \"_internal\" starts with '_'",
        "tags[2]: tag \"ok\" is given twice (line 2, column",
        "tests[0].steps[0].load.rate: must be positive (line 7, column",
        "tests[0].steps[1].name: step \"a\" is given twice in this test (line 8",
        "tests[0].steps[1].wait_port.port: must be between 1 and 65535 (line 9",
        "tests[0].steps[2]: give one kind of step, not exec and sleep (line 10",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }

    let good = write_job(
        dir.path(),
        "good.yaml",
        "name: good\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n",
    );
    // A file named relative to the working directory, as people type it.
    let out = Command::new(BIN)
        .args(["validate", "good.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = stampede(&["validate", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("valid"), "{}", text(&out));

    let newer = write_job(
        dir.path(),
        "newer.yaml",
        "version: \"2.0\"\nname: n\ntests: []\n",
    );
    let out = stampede(&["validate", &newer]);
    assert_eq!(out.status.code(), Some(104));
    assert!(
        text(&out).contains("version \"2.0\" is not supported"),
        "{}",
        text(&out)
    );
}

#[test]
fn schema_describes_every_step() {
    let out = stampede(&["schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for step in [
        "load",
        "exec",
        "sleep",
        "http",
        "wait_port",
        "echo",
        "randecho",
    ] {
        assert!(text.contains(&format!("\"{step}\"")), "{step} missing");
    }
    assert!(text.contains("Kill the command and fail the target after this long"));
}
