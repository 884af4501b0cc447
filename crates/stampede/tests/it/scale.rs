//! The `scale` step end to end: the real `stampede` binary runs coder's autostart scale
//! test (`examples/autostart-fast.yaml`) against the workspace service of a real
//! `stampede sut`. Timing tests (`scale_waves_*`) run alone (see .config/nextest.toml).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, Sut, run_job_in, stampede, text, validate};

const FAST: &str = include_str!("../../../../examples/autostart-fast.yaml");

/// The fast autostart example pointed at `sut` with `runners` runners.
fn autostart(sut: &Sut, runners: usize) -> String {
    let yaml = FAST.replace("http://127.0.0.1:8080", &sut.url);
    assert!(yaml.contains("runners: 8"), "the example sets runners: 8");
    yaml.replace("runners: 8", &format!("runners: {runners}"))
}

fn workspace_sut(provisioners: usize, build_time: &str) -> Sut {
    Sut::start(&[
        "--ws-provisioners",
        &provisioners.to_string(),
        "--ws-build-time",
        build_time,
    ])
}

/// The payload of the one `ScaleResults` event in a run's summary.
fn scale_results(summary: &Value) -> Value {
    let events = &summary["runs"][0]["tests"][0]["steps"][0]["targets"][0]["events"];
    let found: Vec<&Value> = events
        .as_array()
        .expect("the step's events")
        .iter()
        .filter(|e| e["name"] == "ScaleResults")
        .collect();
    assert_eq!(found.len(), 1, "one ScaleResults event: {events}");
    found[0]["payload"].clone()
}

/// Runs `yaml` with a JUnit report and checks its exit code; returns its output, the
/// `ScaleResults` payload and the JUnit XML.
fn run(yaml: &str, code: i32) -> (String, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let (out, summary) = run_job_in(dir.path(), yaml, &["--junit", junit.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(code), "{all}");
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    (all, scale_results(&summary), xml)
}

#[test]
fn scale_fast_autostart_passes_and_prints_coders_latency_report() {
    let sut = workspace_sut(4, "200ms");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("coder.json");
    let harness = dir.path().join("harness.json");
    let yaml = autostart(&sut, 8).replace(
        "cleanup_concurrency: 0",
        &format!(
            "cleanup_concurrency: 0\n          output: [\"json:{}\", \"harness-json:{}\"]",
            json.display(),
            harness.display()
        ),
    );
    let (all, results, xml) = run(&yaml, 0);
    for line in [
        "Autostart Scale Test Results\n=============================\n\n",
        "Total Runs:      8\nSuccessful:      8\nFailed:          0\n",
        "End-to-End Latency (Config → Completion)\n-----------------------------------------\nP50: ",
        "Trigger to Completion Latency (Scheduled Time → Completion)\n",
        "autostart/autostart on sut: 8 runners started\n",
        "autostart/autostart on sut: runs ended, 8 passed, 0 failed in ",
    ] {
        assert!(all.contains(line), "missing {line:?} in:\n{all}");
    }
    assert_eq!(results["total_runs"], 8);
    assert_eq!(results["successful_runs"], 8);
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for run in runs {
        assert!(run.get("error").is_none(), "{run}");
        let e2e = run["latencies_ms"]["end_to_end_latency"].as_f64().unwrap();
        let trigger = run["latencies_ms"]["trigger_to_completion"]
            .as_f64()
            .unwrap();
        // Configured up to 3 s before the trigger; built within two waves of 200 ms.
        assert!(
            e2e > trigger && trigger > 150.0 && trigger < 1000.0,
            "{run}"
        );
    }
    assert_eq!(runs[3]["name"], "scaletest-3");
    // coder's JSON layout, with the example's latency names.
    let coder: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(coder["successful_runs"], 8, "{coder}");
    for key in ["end_to_end_latency", "trigger_to_completion"] {
        for p in ["p50", "p95", "p99"] {
            assert!(
                coder[format!("{key}_{p}_ms")].as_u64().unwrap() > 0,
                "{coder}"
            );
        }
    }
    assert_eq!(coder["runs"][3]["workspace_name"], "scaletest-3", "{coder}");
    assert_eq!(coder["runs"][3]["success"], true, "{coder}");
    // coder's harness results: every run by full id, `"<nil>"` for no error.
    let runs: Value = serde_json::from_str(&std::fs::read_to_string(&harness).unwrap()).unwrap();
    assert_eq!(runs["total_pass"], 8, "{runs}");
    assert_eq!(runs["runs"]["autostart/7"]["error"], "<nil>", "{runs}");
    let log = runs["runs"]["autostart/7"]["logs"].as_str().unwrap();
    assert!(log.contains("phase 10 (set autostart): ok in"), "{log}");
    // JUnit: one testcase per run besides the step's own.
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit XML");
    let cases: Vec<String> = report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter().map(|c| c.name.to_string()))
        .collect();
    for id in 0..8 {
        assert!(cases.contains(&format!("autostart/{id}")), "{cases:?}");
    }
}

#[test]
fn scale_runners_failing_before_the_barrier_release_it() {
    // One build in five fails (seeded): some runners fail before the barrier, and the
    // others must still go through it and finish.
    let sut = Sut::start(&[
        "--ws-provisioners",
        "4",
        "--ws-build-time",
        "100ms",
        "--ws-failure-rate",
        "0.2",
        "--ws-seed",
        "7",
    ]);
    let (all, results, _) = run(&autostart(&sut, 10), 97);
    let (pass, fail) = (
        results["successful_runs"].as_u64().unwrap(),
        results["failed_runs"].as_u64().unwrap(),
    );
    assert_eq!(pass + fail, 10, "{results}");
    assert!(pass >= 1, "nobody went through the barrier: {all}");
    let before_barrier = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let phase = r["phase"].as_str().unwrap_or("");
            phase.starts_with("phase 4 ") || phase.starts_with("phase 6 ")
        })
        .count();
    assert!(
        before_barrier >= 1,
        "no runner failed before the barrier: {all}"
    );
    assert!(all.contains("build failed (update: {"), "{all}");
}

/// A job with one scale step on `sut` whose setup logs an owner in (`saved.token`);
/// `rest` is the rest of the step's config, indented by 10 spaces.
fn owner_job(sut: &Sut, rest: &str) -> String {
    format!(
        r#"name: scale
tests:
  - name: t
    targets: {{ list: [{{ id: sut, host: 127.0.0.1, url: "{url}" }}] }}
    steps:
      - name: herd
        scale:
          setup:
            - http: {{ method: POST, url: "{{{{ target.url }}}}/ws/users", json: {{ name: o, password: p }}, status: [201] }}
            - http: {{ method: POST, url: "{{{{ target.url }}}}/ws/login", json: {{ name: o, password: p }}, save: {{ token: "$.token" }} }}
{rest}"#,
        url = sut.url
    )
}

#[test]
fn scale_poll_waits_until_the_answer_holds_and_saves_from_it() {
    let sut = workspace_sut(2, "300ms");
    let yaml = owner_job(
        &sut,
        r#"          runners: 3
          phase_timeout: 20s
          phases:
            - mark: { name: asked }
            - http:
                method: POST
                url: "{{ target.url }}/ws/workspaces"
                headers: { Authorization: "Bearer {{ saved.token }}" }
                json: { name: "w-{{ saved.id }}" }
                status: [201]
            - name: built
              wait:
                poll: { url: "{{ target.url }}/ws/workspaces/w-{{ saved.id }}", headers: { Authorization: "Bearer {{ saved.token }}" } }
                interval: 50ms
                until: { "$.latest_build.status": succeeded }
                fail_if: [{ when: { "$.latest_build.status": { in: [failed, canceled] } }, error: "build failed" }]
                save: { build: "$.latest_build.build_number" }
            - http: { url: "{{ target.url }}/bytes/{{ saved.build }}" }
            - mark: { name: ready }
          latencies: [{ name: ready, from: asked, to: ready }]
"#,
    );
    let (all, results, _) = run(&yaml, 0);
    assert_eq!(results["successful_runs"], 3, "{all}");
    // Polled until built: a build takes 300 ms; the saved build number made the next URL.
    let ready = &results["latencies"][0];
    assert_eq!(ready["count"], 3, "{results}");
    assert!(ready["p50_ms"].as_f64().unwrap() >= 300.0, "{results}");
}

#[test]
fn scale_phase_timeouts_fail_the_phase_and_name_it() {
    let sut = workspace_sut(1, "100ms");
    let yaml = owner_job(
        &sut,
        r#"          runners: 2
          run_timeout: 1m
          phase_timeout: 300ms
          streams:
            builds: { url: "{{ target.url }}/ws/builds/watch", headers: { Authorization: "Bearer {{ saved.token }}" }, key: "$.workspace_name", runner_key: "w-{{ saved.id }}" }
          phases:
            - http: { url: "{{ target.url }}/delay/100" }
            - name: never built
              wait: { stream: builds, until: { "$.status": succeeded } }
"#,
    );
    let start = std::time::Instant::now();
    let (all, results, _) = run(&yaml, 97);
    assert!(start.elapsed() < Duration::from_secs(20), "{all}");
    for run in results["runs"].as_array().unwrap() {
        assert_eq!(
            run["error"], "phase 2 (never built): context deadline exceeded",
            "{run}"
        );
        let took = run["duration_ms"].as_f64().unwrap();
        assert!((350.0..5000.0).contains(&took), "{run}");
    }
}

#[test]
fn scale_a_stream_that_never_answers_fails_the_step_within_a_run_timeout() {
    let sut = workspace_sut(1, "100ms");
    let yaml = owner_job(
        &sut,
        r#"          runners: 2
          run_timeout: 1s
          streams:
            stuck: { url: "{{ target.url }}/delay/60000", key: "$.k", runner_key: "{{ saved.id }}" }
          phases:
            - wait: { stream: stuck, until: { "$.k": x } }
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let (out, _) = run_job_in(dir.path(), &yaml, &[]);
    let all = text(&out);
    assert!(start.elapsed() < Duration::from_secs(15), "{all}");
    assert_eq!(out.status.code(), Some(97), "{all}");
    assert!(
        all.contains("opening the update streams: context deadline exceeded"),
        "{all}"
    );
}

/// Runs `runners` runners that pass at once and whose one cleanup phase, `stuck`, waits a
/// minute for its answer, under `limits` (cleanup settings); checks that the step failed
/// within 20 s with every run passed, and returns its output and results.
fn run_stuck_cleanups(runners: usize, limits: &[&str]) -> (String, Value) {
    let sut = workspace_sut(1, "100ms");
    let limits: String = limits.iter().map(|l| format!("          {l}\n")).collect();
    let yaml = owner_job(
        &sut,
        &format!(
            r#"          runners: {runners}
{limits}          phases:
            - http: {{ url: "{{{{ target.url }}}}/delay/10" }}
          cleanup:
            - name: stuck
              http: {{ url: "{{{{ target.url }}}}/delay/60000" }}
"#
        ),
    );
    let start = Instant::now();
    let (all, results, _) = run(&yaml, 97);
    assert!(start.elapsed() < Duration::from_secs(20), "{all}");
    assert_eq!(results["successful_runs"], runners, "{results}");
    (all, results)
}

#[test]
fn scale_a_cleanup_that_never_answers_fails_within_the_cleanup_timeout() {
    let (all, results) = run_stuck_cleanups(2, &["cleanup_timeout: 1s", "cleanup_concurrency: 0"]);
    assert_eq!(
        results["cleanup_errors"],
        serde_json::json!([
            "herd/0: cleanup phase 1 (stuck): context deadline exceeded",
            "herd/1: cleanup phase 1 (stuck): context deadline exceeded"
        ]),
        "{all}"
    );
}

#[test]
fn scale_the_cleanup_deadline_abandons_every_cleanup_still_pending_or_running() {
    // Three waves of four cleanups, each allowed ten minutes and answered after one: the
    // step would take three minutes without the deadline of all cleanups together.
    let (all, results) = run_stuck_cleanups(
        12,
        &[
            "cleanup_timeout: 10m",
            "cleanup_concurrency: 4",
            "cleanup_deadline: 2s",
        ],
    );
    assert!(
        all.contains("herd on sut: cleanup_deadline (2s) passed, 12 cleanup(s) abandoned; raise it, or remove by hand what those runs made"),
        "{all}"
    );
    let errors: Vec<&str> = results["cleanup_errors"]
        .as_array()
        .expect("cleanup errors")
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 12, "{all}");
    let deadline =
        "the cleanup_deadline (2s) passed; raise it, or remove by hand what the run made";
    let running =
        format!("abandoned while it ran (cleanup phase 1 (stuck): context canceled): {deadline}");
    let pending = format!("abandoned before it started: {deadline}");
    for (i, error) in errors.iter().enumerate() {
        assert!(error.starts_with(&format!("herd/{i}: ")), "{error}");
    }
    // The four that held a slot were cut off; the eight waiting for one never started.
    let count = |what: &str| errors.iter().filter(|e| e.ends_with(what)).count();
    assert_eq!((count(&running), count(&pending)), (4, 8), "{errors:#?}");
}

#[test]
fn scale_cleanups_skip_phases_that_read_values_the_run_never_saved() {
    let sut = workspace_sut(1, "100ms");
    let yaml = owner_job(
        &sut,
        r#"          runners: 2
          phases:
            - name: refused
              http: { url: "{{ target.url }}/delay/10", status: [299] }
            - http:
                method: POST
                url: "{{ target.url }}/ws/workspaces"
                headers: { Authorization: "Bearer {{ saved.token }}" }
                json: { name: "w-{{ saved.id }}" }
                save: { made: "$.name" }
          cleanup:
            - name: delete
              http: { method: DELETE, url: "{{ target.url }}/ws/workspaces/{{ saved.made }}", headers: { Authorization: "Bearer {{ saved.token }}" } }
"#,
    );
    let (all, results, _) = run(&yaml, 97);
    assert_eq!(results["failed_runs"], 2, "{results}");
    // Nothing was created, so there is nothing to delete: no failed cleanup.
    let cleanup_errors = results["cleanup_errors"].as_array();
    assert!(cleanup_errors.is_none_or(Vec::is_empty), "{all}");
    assert!(!all.contains("cleanup(s) failed"), "{all}");
}

#[test]
fn scale_ctrl_c_cancels_waiting_runners_promptly() {
    let sut = workspace_sut(1, "60s");
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(dir.path(), &autostart(&sut, 4));
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert!(signalled.elapsed() < Duration::from_secs(15), "{all}");
    assert_eq!(out.status.code(), Some(105), "{all}");
    assert!(all.contains("cancelled"), "{all}");
    assert!(all.contains("runs ended, 0 passed, 4 failed"), "{all}");
    // No cleanup is tried after a cancel (coder's CLI skips it after an interrupt).
    assert!(!all.contains("Failed Cleanups"), "{all}");
    assert!(
        all.contains("cancelled, cleanups skipped; what the runners created is left"),
        "{all}"
    );
}

#[test]
fn scale_schema_documents_the_step_and_its_phases() {
    let out = stampede(&["schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let schema = String::from_utf8_lossy(&out.stdout);
    for doc in [
        "N runners through a lifecycle of phases (coder's scale-test harness).",
        "Wait until every runner of the step arrived at the barrier of this name",
        "Each runner's key, a template, e.g. `scaletest-{{ saved.id }}`",
    ] {
        assert!(schema.contains(doc), "the schema lacks {doc:?}");
    }
}

/// Starts `stampede run` on `yaml` (written into `dir`), its output captured.
fn spawn(dir: &std::path::Path, yaml: &str) -> std::process::Child {
    let file = dir.join("job.yaml");
    std::fs::write(&file, yaml).unwrap();
    Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `POST /ws/admin/close-streams`; how many streams it closed.
fn close_streams(url: &str) -> u64 {
    let addr = url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).expect("connect to the sut");
    write!(
        tcp,
        "POST /ws/admin/close-streams HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    json["closed"].as_u64().unwrap_or(0)
}

#[test]
fn scale_stream_dropped_mid_run_fails_waiting_runners_promptly() {
    // Builds take a minute: every runner is still waiting for its first build when the
    // stream ends.
    let sut = workspace_sut(1, "60s");
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(dir.path(), &autostart(&sut, 4));
    // Let the runners reach their wait (their builds take a minute), then end the stream.
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    while close_streams(&sut.url) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the step never opened its stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed_at = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = closed_at.elapsed();
    let all = text(&out);
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} after the stream closed:\n{all}"
    );
    assert_eq!(out.status.code(), Some(97), "{all}");
    assert!(all.contains("Failed:          4"), "{all}");
    assert!(
        all.contains(
            "- scaletest-0 (0): phase 4 (wait initial build): update stream closed (stream \"builds\" \
             ended before an update met `until`: the server closed it, or sent an update that is \
             not JSON)"
        ),
        "{all}"
    );
    assert!(all.contains("4 of 4 runs failed"), "{all}");
}

#[test]
fn scale_validate_refuses_bad_lifecycles_with_their_paths() {
    let (out, all) = validate(
        r#"name: bad
tests:
  - name: t
    steps:
      - name: herd
        scale:
          runners: 2
          phases:
            - http: { url: "{{ target.url }}/{{ saved.nope }}" }
            - wait: { stream: missing, until: { "$.status": ok } }
            - mark: { name: start }
          cleanup:
            - barrier: again
          latencies:
            - { name: l, from: start, to: finish }
"#,
    );
    assert_eq!(out.status.code(), Some(104), "{all}");
    for expected in [
        "tests[0].steps[0].scale.phases[0].http.url: saved value \"nope\" is not saved by any earlier phase",
        "tests[0].steps[0].scale.phases[1].wait.stream: no stream is named \"missing\"",
        "tests[0].steps[0].scale.cleanup[0].barrier: a cleanup cannot wait at a barrier",
        "tests[0].steps[0].scale.latencies[0].to: no phase marks \"finish\"",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(all.contains("(line 9, column"), "{all}");
}

/// The `p` percentile of the trigger-to-completion latencies of `n` builds queued at once
/// on `p_pool` provisioners taking `b` each: the k-th finishes `(floor(k / P) + 1) · B`
/// after the trigger; coder's rule picks `sorted[floor((n - 1) · p)]`.
fn expected_ms(n: usize, pool: usize, b_ms: f64, p: f64) -> f64 {
    let k = ((n - 1) as f64 * p) as usize;
    ((k / pool) + 1) as f64 * b_ms
}

fn check_waves(n: usize, pool: usize, b_ms: u64) {
    let sut = workspace_sut(pool, &format!("{b_ms}ms"));
    let (_, results, _) = run(&autostart(&sut, n), 0);
    let latency = results["latencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "trigger_to_completion")
        .unwrap()
        .clone();
    assert_eq!(latency["count"], n);
    for (key, p) in [("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        let want = expected_ms(n, pool, b_ms as f64, p);
        let got = latency[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 0.10,
            "N={n} P={pool} B={b_ms}ms: {key} {got:.1} ms, waves of P every B say {want} ms"
        );
    }
}

#[test]
fn scale_waves_12_runners_4_provisioners_600ms() {
    check_waves(12, 4, 600);
}

#[test]
fn scale_waves_20_runners_5_provisioners_400ms() {
    check_waves(20, 5, 400);
}
