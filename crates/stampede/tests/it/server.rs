//! `stampede server` as a process: tokens from the command line, a job submitted over HTTP,
//! SIGTERM pausing it and a restart finishing it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use stampede_store::pg_schema::TestBackend;

use super::cloud::Db;
use super::{BIN, text};

/// One HTTP/1.1 request; returns the status and the JSON body.
pub(super) fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    try_http(addr, method, path, token, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// [`http`], or why no whole answer came (the server is gone).
fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Token {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {reply:?}")))?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// `stampede server token create` for the default project: the secret it prints.
pub(super) fn create_token(db: &str, name: &str) -> String {
    create_token_for(db, name, "default")
}

/// `stampede server token create` for `project`: the secret it prints.
pub(super) fn create_token_for(db: &str, name: &str, project: &str) -> String {
    let out = Command::new(BIN)
        .args(["server", "token", "create", "--name", name])
        .args(["--project", project, "--database", db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn start_server(db: &str) -> (Child, String) {
    start_server_as(db, "e2e")
}

/// `stampede server` on a free port with this server id; its address.
pub(super) fn start_server_as(db: &str, id: &str) -> (Child, String) {
    start_server_with(db, id, &[])
}

/// `stampede server` on a free port with this server id and `extra` flags; its address.
pub(super) fn start_server_with(db: &str, id: &str, extra: &[&str]) -> (Child, String) {
    start_server_in_env(db, id, extra, &[])
}

/// [`start_server_with`], with `env` added to the server's environment.
pub(super) fn start_server_in_env(
    db: &str,
    id: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "server",
            "--addr",
            "127.0.0.1:0",
            "--database",
            db,
            "--server-id",
            id,
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .trim()
        .to_string();
    (child, addr)
}

pub(super) fn wait_for(addr: &str, token: &str, id: u64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(addr, "GET", &format!("/v1/jobs/{id}"), token, "");
        assert_eq!(status, 200, "{body}");
        if body["state"] == state {
            return body;
        }
        assert!(Instant::now() < deadline, "never {state}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server_tokens_submit_sigterm_and_restart(backend: TestBackend) {
    let Some(store) = Db::open(backend) else {
        return;
    };
    let db = store.url.clone();
    let token = create_token(&db, "ci");
    assert_eq!(token.len(), 64, "{token}");

    let (server, addr) = start_server(&db);
    let job = "name: slow\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 2s }\n      - name: after\n        echo: { text: done }\n";
    let (status, created) = http(&addr, "POST", "/v1/jobs", &token, job);
    assert_eq!(status, 201, "{created}");
    let id = created["job_id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = server.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let (mut server, addr) = start_server(&db);
    let done = wait_for(&addr, &token, id, "completed");
    assert_eq!(done["runs"][0]["tests"][0]["targets"][0]["step"], "after");
    let (_, events) = http(&addr, "GET", &format!("/v1/jobs/{id}/events"), &token, "");
    let names: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let count = |n: &str| names.iter().filter(|x| *x == n).count();
    assert_eq!(count("JobStatePaused"), 1, "{names:?}");
    assert_eq!(count("TargetIn"), 2, "nothing twice: {names:?}");
    assert_eq!(count("TargetOut"), 2, "nothing lost: {names:?}");

    let (status, _) = http(&addr, "GET", "/v1/jobs", "not-a-token", "");
    assert_eq!(status, 401);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn server_tokens_submit_sigterm_and_restart_sqlite() {
    server_tokens_submit_sigterm_and_restart(TestBackend::Sqlite);
}

#[test]
fn server_tokens_submit_sigterm_and_restart_postgres() {
    server_tokens_submit_sigterm_and_restart(TestBackend::Postgres);
}

/// `stampede` with the client's config file in `dir` and no token in the environment.
pub(super) fn client_cmd(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("STAMPEDE_CONFIG", dir.join("config.json"))
        .env_remove("STAMPEDE_TOKEN")
        .env_remove("STAMPEDE_SERVER")
        .output()
        .unwrap()
}

#[test]
fn login_cloud_run_and_jobs_verbs_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("server.db").display());
    let token = create_token(&db, "cli");
    let (mut server, addr) = start_server(&db);
    let url = format!("http://{addr}");

    // A wrong token is refused at login and nothing is saved.
    let out = client_cmd(dir.path(), &["login", "--server", &url, "--token", "wrong"]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    assert!(!dir.path().join("config.json").exists());
    let out = client_cmd(dir.path(), &["login", "--server", &url, "--token", &token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // cloud run follows the job to its end; a crossed threshold would be 99, this passes.
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        "name: remote\ntags: [cli]\ntests:\n  - name: t\n    targets: { synthetic: { count: 2 } }\n    steps:\n      - name: hi\n        echo: { text: '{{ target.id }}' }\n",
    )
    .unwrap();
    let summary = dir.path().join("status.json");
    let out = client_cmd(
        dir.path(),
        &[
            "cloud",
            "run",
            job.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{url}/v1/jobs/1")),
        "{}",
        text(&out)
    );
    let status: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(status["state"], "completed");

    let out = client_cmd(dir.path(), &["jobs", "list", "--tag", "cli", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["jobs"][0]["name"], "remote");
    let out = client_cmd(dir.path(), &["jobs", "events", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("JobStateCompleted"));
    let out = client_cmd(dir.path(), &["jobs", "retry", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("job 2 is job 1 again"));
    let out = client_cmd(dir.path(), &["jobs", "status", "999"]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    assert!(text(&out).contains("there is no job 999"), "{}", text(&out));
    // An invalid descriptor never leaves the machine.
    std::fs::write(&job, "name: bad\ntests: []\n").unwrap();
    let out = client_cmd(dir.path(), &["cloud", "run", job.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn the_server_writes_json_log_lines_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("logs.db").display());
    let token = create_token(&db, "logs");
    let (server, addr) =
        start_server_with(&db, "e2e", &["--log-format", "json", "--log-level", "info"]);
    let job = "name: logged\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n";
    let (status, created) = http(&addr, "POST", "/v1/jobs", &token, job);
    assert_eq!(status, 201, "{created}");
    let id = created["job_id"].as_u64().unwrap();
    wait_for(&addr, &token, id, "completed");
    // The job's thread logs its end just after the state is written.
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let out = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let logged = |message: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"] == message && l["fields"]["job"] == id && l["level"] == "INFO"
        })
    };
    assert!(logged("job started"), "{stderr}");
    assert!(logged("job ended"), "{stderr}");
    // The user-facing lines stay sentences.
    assert!(stderr.contains("pausing the running jobs"), "{stderr}");
}

/// `kill -9` during submissions from 8 threads, three times: after a last restart every
/// acknowledged job (a 201 that arrived whole) ends completed or failed; none is stuck.
fn kill_9_during_submissions_leaves_no_job_unsettled(backend: TestBackend) {
    let Some(store) = Db::open(backend) else {
        return;
    };
    let db = store.url.clone();
    let token = create_token(&db, "crash");
    let job = "name: quick\ntests:\n  - name: t\n    steps:\n      - name: hi\n        echo: { text: hi }\n";
    let acknowledged = std::sync::Mutex::new(Vec::new());
    for round in 0..3 {
        let (mut server, addr) = start_server(&db);
        std::thread::scope(|threads| {
            for _ in 0..8 {
                threads.spawn(|| {
                    while let Ok((status, body)) = try_http(&addr, "POST", "/v1/jobs", &token, job)
                    {
                        if status == 429 {
                            // The queue is full (jobs waiting for a slot): not acknowledged,
                            // so nothing to settle; the queued ones must be.
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        assert_eq!(status, 201, "{body}");
                        let id = body["job_id"].as_u64().unwrap();
                        acknowledged.lock().unwrap().push(id);
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(700 + 200 * round));
            server.kill().unwrap();
        });
        let _ = server.wait();
    }
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() > 24,
        "only {} jobs acknowledged",
        acknowledged.len()
    );
    let (mut server, addr) = start_server(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stuck: Vec<(u64, String)> =
        acknowledged.iter().map(|&id| (id, String::new())).collect();
    while !stuck.is_empty() && Instant::now() < deadline {
        stuck.retain_mut(|(id, state)| {
            let (status, body) = http(&addr, "GET", &format!("/v1/jobs/{id}"), &token, "");
            assert_eq!(status, 200, "job {id}: {body}");
            *state = body["state"].as_str().unwrap_or_default().to_string();
            !matches!(state.as_str(), "completed" | "failed")
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    eprintln!(
        "{} jobs acknowledged over 3 kills, {} not settled",
        acknowledged.len(),
        stuck.len()
    );
    assert!(
        stuck.is_empty(),
        "{} of {} acknowledged jobs not settled: {stuck:?}",
        stuck.len(),
        acknowledged.len()
    );
}

#[test]
fn kill_9_during_submissions_leaves_no_job_unsettled_sqlite() {
    kill_9_during_submissions_leaves_no_job_unsettled(TestBackend::Sqlite);
}

#[test]
fn kill_9_during_submissions_leaves_no_job_unsettled_postgres() {
    kill_9_during_submissions_leaves_no_job_unsettled(TestBackend::Postgres);
}
