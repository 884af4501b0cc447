//! End-to-end: the real `stampede` binary against a real `stampede sut` on port 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// For each `NAME`, a module of two tests, `NAME::sqlite` and `NAME::postgres`, each
/// running `NAME(backend)` (with `TestBackend` in scope where it is used).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::TestBackend::Sqlite);
                }
                #[test]
                fn postgres() {
                    super::$name(super::TestBackend::Postgres);
                }
            }
        )*
    };
}

mod attack;
mod cloud;
mod compliance;
mod jobs;
mod logins;
mod robustness;
mod scale;
mod server;

const BIN: &str = env!("CARGO_BIN_EXE_stampede");

/// A `stampede sut` child process, killed on drop.
struct Sut {
    child: Child,
    url: String,
}

impl Sut {
    fn start(extra: &[&str]) -> Sut {
        let mut child = Command::new(BIN)
            .args(["sut", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("stampede sut starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim()
            .to_string();
        Sut { child, url }
    }
}

impl Drop for Sut {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stampede(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("stampede runs")
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary written")).unwrap()
}

/// Writes `yaml` to a job file, runs it with `stampede run`, and returns the output and the
/// summary JSON.
fn run_job(yaml: &str) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    run_job_in(dir.path(), yaml, &[])
}

/// [`run_job`] in `dir`, with `extra` arguments.
fn run_job_in(dir: &Path, yaml: &str, extra: &[&str]) -> (Output, Value) {
    let file = dir.join("job.yaml");
    let json = dir.join("s.json");
    std::fs::write(&file, yaml).unwrap();
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--no-progress",
        "--summary-json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = stampede(&args);
    let summary = if json.exists() {
        summary(&json)
    } else {
        Value::Null
    };
    (out, summary)
}

/// Writes `yaml` to a job file and runs `stampede validate` on it: the output and its text.
fn validate(yaml: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = stampede(&["validate", file.to_str().unwrap()]);
    let all = text(&out);
    (out, all)
}

/// A child process killed (SIGKILL) and reaped on drop, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A memory figure of process `pid` from `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kib * 1024
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn quick_open_model_writes_the_documented_summary() {
    let sut = Sut::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let url = format!("{}/", sut.url);
    let out = stampede(&[
        "quick",
        &url,
        "--rate",
        "200",
        "--duration",
        "2s",
        "--no-progress",
        "--threshold",
        "latency: p(99)<500",
        "--threshold",
        "errors: rate<0.01",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&json);
    assert_eq!(s["schema"], "stampede.summary/v1");
    assert_eq!(s["status"], "passed");
    assert_eq!(s["rate"]["target"], 200.0);
    let r = &s["requests"];
    let sent = r["total"].as_u64().unwrap() + r["dropped"].as_u64().unwrap();
    assert!(
        (380..=400).contains(&sent),
        "2 s at 200/s schedules 400 calls: {r}"
    );
    assert_eq!(r["failed"], 0);
    for view in ["response", "service", "lag"] {
        for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
            assert!(s["latency_ms"][view][key].is_number(), "{view}.{key}");
        }
    }
    assert_eq!(s["thresholds"].as_array().unwrap().len(), 2);
    assert!(text(&out).contains("PASSED"));
}

/// README's quick start: `demo` runs a job against the built-in server, through the job
/// runner, with its events in a SQLite file.
#[test]
fn demo_runs_a_job_against_the_built_in_server_and_keeps_it_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let out = stampede(&[
        "demo",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--no-progress",
        "--store",
        &store,
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&json);
    assert_eq!(s["status"], "passed", "{s}");
    assert_eq!(s["state"], "completed", "{s}");
    let load = &s["steps"][0];
    assert_eq!(load["name"], "demo/load", "{s}");
    let sent = load["requests"]["total"].as_u64().unwrap();
    assert!((150..=200).contains(&sent), "1 s at 200/s: {sent}");
    assert_eq!(load["requests"]["failed"], 0, "{s}");
    assert!(
        text(&out).contains(&format!("job 1 and its events are kept in {store}")),
        "{}",
        text(&out)
    );
    // The job is in the file: resuming it says it already completed.
    let again = stampede(&["run", "--store", &store, "--resume", "1"]);
    assert_eq!(again.status.code(), Some(104), "{}", text(&again));
    assert!(
        text(&again).contains("job 1 is completed, not paused"),
        "{}",
        text(&again)
    );
}

#[test]
fn crossed_thresholds_exit_99_and_the_closed_model_has_no_target() {
    let sut = Sut::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let url = format!("{}/status/503", sut.url);
    let out = stampede(&[
        "quick",
        &url,
        "--vus",
        "4",
        "--duration",
        "1s",
        "--no-progress",
        "--threshold",
        "errors: rate<0.01",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(99), "{}", text(&out));
    let s = summary(&json);
    assert_eq!(s["status"], "failed");
    assert!(s["rate"]["target"].is_null());
    assert!(s["failures"]["status 503"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["thresholds"][0]["ok"], false);
}

#[test]
fn bad_input_gets_exit_104_and_says_what_to_fix() {
    let check = |args: &[&str], needle: &str| {
        let out = stampede(args);
        assert_eq!(out.status.code(), Some(104), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
    };
    check(
        &["quick", "localhost:8080", "--rate", "10"],
        "write an absolute URL",
    );
    check(&["quick", "http://127.0.0.1:9/", "--rate", "abc"], "--rate");
    check(
        &["quick", "http://127.0.0.1:9/", "--rate", "0"],
        "--rate: must be positive",
    );
    check(
        &["quick", "http://127.0.0.1:9/", "--duration", "soon"],
        "write it like 10s",
    );
    check(
        &["quick", "http://127.0.0.1:9/", "-H", "NoColon"],
        "Name: value",
    );
    check(
        &[
            "quick",
            "http://127.0.0.1:9/",
            "--threshold",
            "latency: p99<5",
        ],
        "unknown aggregation",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "name: x\ntests:\n  - name: t\n    stepz: []\n").unwrap();
    check(&["run", file.to_str().unwrap()], "line 4");
    check(
        &["run", "/nonexistent/job.yaml"],
        "cannot read the job file",
    );
}

#[test]
fn each_verdict_is_shown_once_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let (out, _) = run_job_in(
        dir.path(),
        &format!(
            "name: j\ntests:\n  - name: t\n    steps: [{{name: e, echo: {{text: hi}}}}]\nreporting: {{final_reporters: [{{junit: {{path: {}}}}}]}}\n",
            junit.display()
        ),
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(all.matches("junit").count(), 1, "{all}");
    assert!(
        all.contains(&format!("✓ junit: wrote {}", junit.display())),
        "{all}"
    );
    assert!(junit.is_file());
    assert!(!all.contains("{\"path\""), "no raw JSON: {all}");
}

#[test]
fn sut_help_gives_each_default_once() {
    let out = stampede(&["sut", "--help"]);
    let help = text(&out);
    assert_eq!(out.status.code(), Some(0), "{help}");
    let threads = help
        .split("--threads")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap_or_default();
    assert!(threads.contains("default: the CPUs"), "{threads}");
    assert!(!threads.contains("[default: 0]"), "{threads}");
}

#[test]
fn a_closed_port_fails_the_run_and_says_why() {
    // Port 9 (discard) is closed on loopback: every connect is refused. Counted, never
    // fatal, and a run where every request failed does not pass.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let quick = |extra: &[&str]| {
        let mut args = vec![
            "quick",
            "http://127.0.0.1:9/",
            "--rate",
            "50",
            "--duration",
            "1s",
            "--no-progress",
            "--summary-json",
            json.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        stampede(&args)
    };
    let out = quick(&[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(99), "{all}");
    assert!(all.contains("— FAILED"), "{all}");
    assert!(all.contains("could not connect"), "{all}");
    assert!(
        all.contains("a load step fails on any failed request"),
        "{all}"
    );
    let s = summary(&json);
    assert_eq!(s["status"], "failed", "{s}");
    assert!(s["failures"]["connect"].as_u64().unwrap() >= 40, "{s}");
    assert_eq!(s["requests"]["ok"], 0);
    assert!(
        s["reasons"][0]
            .as_str()
            .unwrap()
            .contains("requests failed"),
        "{s}"
    );
    // Allowed, or decided by an errors threshold, failures alone do not fail it.
    let allowed = quick(&["--allow-errors"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    let decided = quick(&["--threshold", "errors:rate<1.01"]);
    assert_eq!(decided.status.code(), Some(0), "{}", text(&decided));
}

#[test]
fn run_writes_one_summary_per_named_step() {
    let sut = Sut::start(&[]);
    let (out, s) = run_job(&format!(
        r#"version: "1.0"
name: smoke
tests:
  - name: api
    steps:
      - name: ramp
        load:
          url: {url}/
          start_rate: 0
          stages: [{{ duration: 1s, target: 100 }}]
          thresholds:
            latency: ["p(95)<500"]
      - name: mixed
        load:
          requests:
            - url: {url}/echo
              method: POST
              body: hello
              body_contains: hello
            - url: {url}/bytes/100
          vus: 2
          iterations: 50
"#,
        url = sut.url
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s["name"], "smoke");
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "api/ramp");
    assert_eq!(steps[1]["name"], "api/mixed");
    let ramp = &steps[0]["requests"];
    assert_eq!(
        ramp["total"].as_u64().unwrap() + ramp["dropped"].as_u64().unwrap(),
        50
    );
    assert_eq!(steps[1]["requests"]["ok"], 50, "{}", steps[1]);
}

#[test]
fn http2_cleartext_and_tls() {
    let plain = Sut::start(&[]);
    let out = stampede(&[
        "quick",
        &format!("{}/", plain.url),
        "--http2",
        "--vus",
        "4",
        "--duration",
        "1s",
        "--no-progress",
        "--threshold",
        "errors: rate==0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tls = Sut::start(&["--tls"]);
    assert!(tls.url.starts_with("https://"), "{}", tls.url);
    for extra in [&["--http2"][..], &[][..]] {
        let url = format!("{}/", tls.url);
        let mut args = vec![
            "quick",
            &url,
            "--insecure",
            "--vus",
            "2",
            "--duration",
            "1s",
            "--no-progress",
            "--threshold",
            "errors: rate==0",
            "--threshold",
            "requests: count>10",
        ];
        args.extend_from_slice(extra);
        let out = stampede(&args);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", text(&out));
    }
    // Without --insecure the self-signed certificate fails every handshake, and the
    // verdict says so.
    let url = format!("{}/", tls.url);
    let out = stampede(&[
        "quick",
        &url,
        "--vus",
        "1",
        "--duration",
        "1s",
        "--no-progress",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(99), "{all}");
    assert!(all.contains("failed the TLS handshake"), "{all}");
    assert!(all.contains("--insecure"), "{all}");
    assert!(all.contains("tls: "), "the failure kind: {all}");
}

/// The coordinated-omission acceptance case: a server that freezes 1 s in every 5 s, loaded
/// at 200/s with room for 1,000 in flight. A perfect open-model client sees p99 ≈ 950 ms
/// (a fifth of the requests fall in a freeze and wait up to 1 s); a closed-model client sees
/// only its few stalled requests and reports a p99 of milliseconds.
#[test]
fn coordinated_omission_is_corrected_in_the_open_model() {
    let sut = Sut::start(&["--stall-every", "5s", "--stall-for", "1s"]);
    let started = std::time::Instant::now();
    // Start at phase 0.5 s of the 5 s cycle so the run holds whole freezes.
    std::thread::sleep(std::time::Duration::from_millis(500).saturating_sub(started.elapsed()));
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open.json");
    let url = format!("{}/", sut.url);
    let out = stampede(&[
        "quick",
        &url,
        "--rate",
        "200",
        "--duration",
        "20s",
        "--max-in-flight",
        "1000",
        "--connections",
        "50",
        "--no-progress",
        "--summary-json",
        open.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary(&open);
    let p99 = s["latency_ms"]["response"]["p99"].as_f64().unwrap();
    // From phase 0.5 s, 20 s hold freezes at 5, 10, 15 and half of the one at 20: 3.5 s of
    // 20 s, so p99 = 1 s · (1 − 0.01 / 0.175) ≈ 943 ms.
    assert!(
        (850.0..=1040.0).contains(&p99),
        "response p99 {p99} ms: {s}"
    );
    // Nothing is dropped for want of a slot. A shared host with steal time may wake some
    // ticks late (the engine drops those rather than bursting): 95 of 4,000 were seen.
    assert!(s["dropped"]["no_slot"].is_null(), "{s}");
    assert!(
        s["requests"]["dropped"].as_u64().unwrap() <= 200,
        "at most 5 % late: {s}"
    );
    let service_p99 = s["latency_ms"]["service"]["p99"].as_f64().unwrap();
    assert!(
        service_p99 > 500.0,
        "the stalled requests' own service time shows too: {s}"
    );

    let closed = dir.path().join("closed.json");
    let out = stampede(&[
        "quick",
        &url,
        "--vus",
        "50",
        "--duration",
        "6s",
        "--no-progress",
        "--summary-json",
        closed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = summary(&closed);
    let closed_p99 = c["latency_ms"]["response"]["p99"].as_f64().unwrap();
    assert!(
        closed_p99 < 100.0,
        "a closed model hides the freeze: p99 {closed_p99} ms: {c}"
    );
    assert!(
        c["latency_ms"]["response"]["max"].as_f64().unwrap() > 500.0,
        "{c}"
    );
}

#[test]
fn an_abort_on_fail_threshold_stops_the_run_after_its_delay() {
    let sut = Sut::start(&[]);
    let (out, s) = run_job(&format!(
        r#"name: abort
tests:
  - name: api
    steps:
      - name: slow
        load:
          url: {url}/delay/20
          rate: 50
          duration: 60s
          thresholds:
            latency:
              - threshold: "p(99)<1"
                abortOnFail: true
                delayAbortEval: 3s
      - name: never
        load: {{ url: "{url}/", rate: 10, duration: 1s }}
"#,
        url = sut.url
    ));
    assert_eq!(out.status.code(), Some(99), "{}", text(&out));
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        1,
        "a run stopped by a threshold runs no further step: {s}"
    );
    let step = &steps[0];
    let duration = step["duration_s"].as_f64().unwrap();
    assert!(
        (3.0..10.0).contains(&duration),
        "aborted after the 3 s delay, not before: {step}"
    );
    let why = step["stopped_early"].as_str().unwrap();
    assert!(
        why.contains("thresholds on metrics 'latency' were crossed"),
        "{why}"
    );
}

#[test]
fn ctrl_c_stops_gracefully_and_still_prints_the_summary() {
    let sut = Sut::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let url = format!("{}/delay/200", sut.url);
    let child = Command::new(BIN)
        .args([
            "quick",
            &url,
            "--rate",
            "50",
            "--duration",
            "60s",
            "--no-progress",
        ])
        .args(["--summary-json", json.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("stopped early: interrupted by the user"),
        "{}",
        text(&out)
    );
    let s = summary(&json);
    assert!(s["duration_s"].as_f64().unwrap() < 5.0, "{s}");
    // Calls in flight at the stop were allowed to finish: none was cut off.
    assert_eq!(s["requests"]["interrupted"], 0, "{s}");
    assert!(s["requests"]["ok"].as_u64().unwrap() >= 50, "{s}");
}

/// One HTTP/1.1 request with an optional bearer token: the status and the body.
fn request(url: &str, method: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    (
        status,
        reply
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string(),
    )
}

#[test]
fn sut_serves_the_snapshot_store_and_the_workspace_service_from_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    let sut = Sut::start(&[
        "--snap-dir",
        snap.to_str().unwrap(),
        "--snap-admin-token",
        "admin",
        "--ws-provisioners",
        "2",
        "--ws-build-time",
        "50ms",
    ]);
    let (status, body) = request(&sut.url, "POST", "/snap/clients/c1", None, "");
    assert_eq!(status, 403, "the admin secret is asked for: {body}");
    let (status, token) = request(&sut.url, "POST", "/snap/clients/c1", Some("admin"), "");
    assert_eq!(status, 200, "{token}");
    let (status, ids) = request(&sut.url, "GET", "/snap/snapshots", Some(token.trim()), "");
    assert_eq!((status, ids.trim()), (200, ""));
    assert!(snap.is_dir(), "the data directory is made");
    let (status, body) = request(
        &sut.url,
        "POST",
        "/ws/users",
        None,
        r#"{"name": "u", "password": "p"}"#,
    );
    assert_eq!(status, 201, "{body}");

    let out = stampede(&[
        "sut",
        "--snap-dir",
        snap.to_str().unwrap(),
        "--snap-bugs",
        "nonsense",
    ]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    assert!(text(&out).contains("--snap-bugs"), "{}", text(&out));
    let out = stampede(&["sut", "--ws-provisioners", "0"]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
}
