//! The server and the client together, as processes, on SQLite and on PostgreSQL: a local
//! run streamed to the server (`run --out cloud`) and stopped from it, the job lifecycle
//! through `stampede jobs`, kill -9 and restart, and several servers sharing one database.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stampede_store::pg_schema::{TestBackend, TestStore};

use super::server::{client_cmd, create_token, http, start_server_as, wait_for};
use super::{BIN, Killed, Sut, text};

/// A fresh database for one test (a temporary SQLite file, or a PostgreSQL schema), removed
/// afterwards.
pub(super) struct Db {
    pub(super) url: String,
    store: Option<TestStore>,
    runtime: tokio::runtime::Runtime,
}

impl Db {
    /// `None` for PostgreSQL when no server is configured outside CI (the store's notice
    /// says so; under CI that fails instead).
    pub(super) fn open(backend: TestBackend) -> Option<Db> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = runtime.block_on(TestStore::open(backend, "end-to-end", "s_e2e"))?;
        Some(Db {
            url: store.url.clone(),
            store: Some(store),
            runtime,
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.runtime.block_on(store.remove());
        }
    }
}

fn get(addr: &str, token: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, token, "");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Waits until `GET path` answers 200 with a body for which `check` holds.
fn poll(addr: &str, token: &str, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http(addr, "GET", path, token, "");
        if status == 200 && check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never {what}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn event_names(addr: &str, token: &str, id: u64) -> Vec<String> {
    get(addr, token, &format!("/v1/jobs/{id}/events"))["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

fn load_job(sut: &Sut, rate: u32, duration: &str) -> String {
    format!(
        "name: streamed\ntests:\n  - name: t\n    steps:\n      - name: load\n        load:\n          url: {}/\n          rate: {rate}\n          duration: {duration}\n          thresholds:\n            latency: [\"p(99) < 2000\"]\n            errors: [\"rate < 0.5\"]\n",
        sut.url
    )
}

/// A server over a fresh database, a token, a SUT, and a load job file for it.
struct Streaming {
    dir: tempfile::TempDir,
    token: String,
    addr: String,
    job: std::path::PathBuf,
    _sut: Sut,
    _server: Killed,
    _db: Db,
}

impl Streaming {
    fn start(backend: TestBackend, rate: u32, duration: &str) -> Option<Streaming> {
        let db = Db::open(backend)?;
        let dir = tempfile::tempdir().unwrap();
        let token = create_token(&db.url, "out");
        let (server, addr) = start_server_as(&db.url, "a");
        let sut = Sut::start(&[]);
        let job = dir.path().join("job.yaml");
        std::fs::write(&job, load_job(&sut, rate, duration)).unwrap();
        Some(Streaming {
            dir,
            token,
            addr,
            job,
            _sut: sut,
            _server: Killed(server),
            _db: db,
        })
    }
}

fn out_cloud_streams_and_the_server_merges_exactly(backend: TestBackend) {
    let Some(s) = Streaming::start(backend, 300, "3s") else {
        return;
    };
    let (dir, token, addr, job) = (s.dir.path(), s.token.as_str(), s.addr.as_str(), &s.job);
    let local = dir.join("local.json");
    let server_url = format!("http://{addr}");
    let out = client_cmd(
        dir,
        &[
            "run",
            "--out",
            "cloud",
            "--server",
            &server_url,
            "--token",
            token,
            "--no-progress",
            "--summary-json",
            local.to_str().unwrap(),
            job.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("streaming to test run 1: {server_url}/v1/tests/1")),
        "{}",
        text(&out)
    );
    let local: Value = serde_json::from_str(&std::fs::read_to_string(&local).unwrap()).unwrap();
    let local = &local["steps"][0];

    let run = get(addr, token, "/v1/tests/1");
    assert_eq!(run["run_status"], 3, "{run}");
    assert_eq!(run["result_status"], 0, "{run}");
    assert_eq!(run["created"]["name"], "streamed");
    assert_eq!(run["created"]["duration"], 3);
    assert_eq!(run["created"]["thresholds"]["latency"][0], "p(99) < 2000");
    assert_eq!(run["thresholds"]["latency"]["p(99) < 2000"], false);
    assert!(run["snapshots"].as_u64().unwrap() >= 3, "{run}");
    let merged = &run["steps"][0];
    assert_eq!(merged["step"], "t/load");
    assert_eq!(merged["target"], local["target"]);
    let requests = local["requests"]["total"].as_u64().unwrap();
    assert!(requests > 600, "{local}");
    // Every count and every latency statistic of every view, exactly as the run printed.
    assert_eq!(merged["summary"]["requests"], local["requests"], "{run}");
    assert_eq!(merged["summary"]["latency_ms"], local["latency_ms"]);
    assert_eq!(merged["summary"]["failures"], local["failures"]);
    assert_eq!(merged["summary"]["dropped"], local["dropped"]);

    let progress = get(addr, token, "/v1/test-progress/1");
    assert_eq!(progress["run_status"], 3);
    assert_eq!(progress["progress"], 1.0);
    // A finished run takes nothing more.
    let (status, body) = http(addr, "POST", "/v1/tests/1/stop", token, "");
    assert_eq!(status, 409, "{body}");
    // Its job record says where to look.
    let (status, body) = http(addr, "GET", "/v1/jobs/1", token, "");
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/tests/1")
    );
}

#[test]
fn out_cloud_streams_and_the_server_merges_exactly_sqlite() {
    out_cloud_streams_and_the_server_merges_exactly(TestBackend::Sqlite);
}

#[test]
fn out_cloud_streams_and_the_server_merges_exactly_postgres() {
    out_cloud_streams_and_the_server_merges_exactly(TestBackend::Postgres);
}

fn a_stop_from_the_server_aborts_a_local_run(backend: TestBackend) {
    let Some(s) = Streaming::start(backend, 50, "60s") else {
        return;
    };
    let (dir, token, addr, job) = (s.dir.path(), s.token.as_str(), s.addr.as_str(), &s.job);
    let started = Instant::now();
    let run = Command::new(BIN)
        .args(["run", "--out", "cloud=stopped", "--no-progress"])
        .arg(job)
        .env("STAMPEDE_SERVER", format!("http://{addr}"))
        .env("STAMPEDE_TOKEN", token)
        .env("STAMPEDE_CONFIG", dir.join("none.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    poll(addr, token, "/v1/test-progress/1", "running", |p| {
        p["run_status"] == 2
    });
    let (status, body) = http(addr, "POST", "/v1/tests/1/stop", token, "");
    assert_eq!(status, 202, "{body}");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(105), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "stopped late");
    assert!(
        text(&out).contains("the server asked to stop test run 1"),
        "{}",
        text(&out)
    );
    let run = get(addr, token, "/v1/tests/1");
    assert_eq!(run["name"], "stopped");
    assert_eq!(run["run_status"], 5, "aborted by user: {run}");
    assert_eq!(run["created"]["duration"], 60);
}

#[test]
fn a_stop_from_the_server_aborts_a_local_run_sqlite() {
    a_stop_from_the_server_aborts_a_local_run(TestBackend::Sqlite);
}

#[test]
fn a_stop_from_the_server_aborts_a_local_run_postgres() {
    a_stop_from_the_server_aborts_a_local_run(TestBackend::Postgres);
}

const SLEEPY: &str = "name: sleepy\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 30s }\n";
const SHORT: &str = "name: short\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 3s }\n      - name: after\n        echo: { text: done }\n";

fn submit(addr: &str, token: &str, job: &str) -> u64 {
    let (status, created) = http(addr, "POST", "/v1/jobs", token, job);
    assert_eq!(status, 201, "{created}");
    created["job_id"].as_u64().unwrap()
}

/// Waits until job `id` has entered its first target.
fn wait_entered(addr: &str, token: &str, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !event_names(addr, token, id).contains(&"TargetIn".to_string()) {
        assert!(Instant::now() < deadline, "job {id} never entered a target");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn the_lifecycle_from_the_cli_with_kill_9_and_retry(backend: TestBackend) {
    let Some(db) = Db::open(backend) else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(&db.url, "cli");
    let (server, addr) = start_server_as(&db.url, "a");
    let mut server = Killed(server);
    let url = format!("http://{addr}");
    // A user logs in with a password (on standard input) for a token of their own.
    let out = Command::new(BIN)
        .args([
            "server",
            "user",
            "create",
            "--name",
            "ann",
            "--database",
            &db.url,
        ])
        .env("STAMPEDE_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let login = |password: &str| {
        let mut child = Command::new(BIN)
            .args(["login", "--server", &url, "--user", "ann"])
            .env("STAMPEDE_CONFIG", dir.path().join("config.json"))
            .env_remove("STAMPEDE_TOKEN")
            .env_remove("STAMPEDE_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("wrong horse");
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    assert!(
        text(&out).contains("wrong user name or password"),
        "{}",
        text(&out)
    );
    let out = login("correct horse");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(!config.contains(&token), "a new token, not the admin's");
    let jobs = |args: &[&str]| {
        let out = client_cmd(dir.path(), &[&["jobs"], args].concat());
        assert_eq!(out.status.code(), Some(0), "jobs {args:?}: {}", text(&out));
    };

    // Pause, resume and cancel through `stampede jobs`.
    let id = submit(&addr, &token, SLEEPY);
    wait_entered(&addr, &token, id);
    jobs(&["pause", &id.to_string()]);
    wait_for(&addr, &token, id, "paused");
    jobs(&["resume", &id.to_string()]);
    wait_for(&addr, &token, id, "started");
    jobs(&["cancel", &id.to_string()]);
    wait_for(&addr, &token, id, "cancelled");
    let names = event_names(&addr, &token, id);
    assert_eq!(count(&names, "JobStatePaused"), 1, "{names:?}");
    assert_eq!(count(&names, "JobStateStarted"), 2, "{names:?}");
    assert_eq!(count(&names, "JobStateCancelling"), 1, "{names:?}");
    assert_eq!(count(&names, "JobStateCancelled"), 1, "{names:?}");

    // kill -9 in the middle of a job: on restart it is a zombie, failed with the reason.
    let id = submit(&addr, &token, SHORT);
    wait_entered(&addr, &token, id);
    drop(server);
    let (restarted, addr) = start_server_as(&db.url, "a");
    server = Killed(restarted);
    let failed = wait_for(&addr, &token, id, "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("zombie"),
        "{failed}"
    );
    // `jobs retry` runs it again, as a new job, to its end.
    let url = format!("http://{addr}");
    let out = client_cmd(
        dir.path(),
        &["jobs", "retry", &id.to_string(), "--server", &url],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again = id + 1;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("job {again} is job {id} again")),
        "{}",
        text(&out)
    );
    let done = wait_for(&addr, &token, again, "completed");
    assert_eq!(done["runs"][0]["tests"][0]["targets"][0]["step"], "after");
    drop(server);
}

#[test]
fn the_lifecycle_from_the_cli_with_kill_9_and_retry_sqlite() {
    the_lifecycle_from_the_cli_with_kill_9_and_retry(TestBackend::Sqlite);
}

#[test]
fn the_lifecycle_from_the_cli_with_kill_9_and_retry_postgres() {
    the_lifecycle_from_the_cli_with_kill_9_and_retry(TestBackend::Postgres);
}

#[test]
fn servers_sharing_one_postgres_database_run_and_recover_only_their_own_jobs() {
    let Some(db) = Db::open(TestBackend::Postgres) else {
        return;
    };
    let token = create_token(&db.url, "shared");
    let (a, addr_a) = start_server_as(&db.url, "a");
    let a = Killed(a);
    let (b, addr_b) = start_server_as(&db.url, "b");
    let _b = Killed(b);

    let on_a = submit(&addr_a, &token, SLEEPY);
    let on_b = submit(&addr_b, &token, SLEEPY);
    wait_entered(&addr_a, &token, on_a);
    wait_entered(&addr_b, &token, on_b);
    // Either answers status for both, and lists both.
    for addr in [&addr_a, &addr_b] {
        assert_eq!(
            get(addr, &token, &format!("/v1/jobs/{on_a}"))["state"],
            "started"
        );
        assert_eq!(
            get(addr, &token, &format!("/v1/jobs/{on_b}"))["state"],
            "started"
        );
        let list = get(addr, &token, "/v1/jobs?state=started");
        assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");
    }
    // Only the server running a job controls it.
    let (status, body) = http(
        &addr_b,
        "POST",
        &format!("/v1/jobs/{on_a}/pause"),
        &token,
        "",
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not running on this server (b)")
    );

    // a dies and comes back: it fails its own zombie and leaves b's job alone.
    drop(a);
    let (a, addr_a) = start_server_as(&db.url, "a");
    let _a = Killed(a);
    let failed = wait_for(&addr_a, &token, on_a, "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("zombie"),
        "{failed}"
    );
    assert_eq!(
        get(&addr_a, &token, &format!("/v1/jobs/{on_b}"))["state"],
        "started"
    );
    let (status, body) = http(
        &addr_b,
        "POST",
        &format!("/v1/jobs/{on_b}/cancel"),
        &token,
        "",
    );
    assert_eq!(status, 202, "{body}");
    wait_for(&addr_a, &token, on_b, "cancelled");
}
