//! The job server probed as an attacker with a valid token of another project would (issue
//! 12's probes): on a default server every probe is refused with 403 and no job is made; a
//! project granted `exec` runs its commands as the `--run-as` user with a clean
//! environment, in a working directory of its own that is gone after; jobs beyond the cap
//! wait queued. Each on SQLite and PostgreSQL, against the real `stampede server`.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use stampede_store::pg_schema::TestBackend;

use super::cloud::Db;
use super::server::{
    create_token, create_token_for, http, start_server_in_env, start_server_with, wait_for,
};
use super::{BIN, Killed, memory, text};

on_both!(
    a_default_server_refuses_every_probe,
    a_project_granted_exec_runs_as_the_run_as_user,
    jobs_beyond_the_cap_wait_queued,
);

/// The server's resident memory, in MiB.
fn rss_mib(server: &Child) -> u64 {
    memory(server.id(), "VmRSS") / 1024 / 1024
}

/// A job with one step, as YAML.
fn one_step(step: &str) -> String {
    format!("name: probe\ntests:\n  - name: t\n    steps:\n      - name: s\n        {step}\n")
}

/// A ConTest descriptor whose steps come from `fetcher`.
fn contest(fetcher: &str, parameters: &str) -> String {
    format!(
        r#"{{"JobName": "probe", "Runs": 1, "TestDescriptors": [{{
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {{"Targets": [{{"FQDN": "localhost", "ID": "1"}}]}},
            "TargetManagerReleaseParameters": {{}},
            "TestFetcherName": "{fetcher}",
            "TestFetcherFetchParameters": {parameters}}}],
            "Reporting": {{"RunReporters": [{{"Name": "Noop"}}]}}}}"#
    )
}

fn a_default_server_refuses_every_probe(backend: TestBackend) {
    let Some(db) = Db::open(backend) else { return };
    let token = create_token_for(&db.url, "teamb", "teamb");
    let (server, addr) = start_server_with(&db.url, "probed", &[]);
    let server = Killed(server);
    let idle_rss = rss_mib(&server.0);
    let shadow = r#"{"TestName": "t", "Steps": [{"name": "cmd", "label": "x", "parameters": {"executable": ["sh"], "args": ["-c", "id; cat /etc/shadow"]}}]}"#;
    // (what, descriptor, the grant the 403 must name)
    let probes = [
        (
            "exec: id; cat /etc/shadow",
            one_step(r#"exec: { command: sh, args: ["-c", "id; cat /etc/shadow"] }"#),
            "`exec`",
        ),
        ("exec: env", one_step("exec: { command: env }"), "`exec`"),
        ("ConTest's cmd", contest("literal", shadow), "`exec`"),
        (
            "junit: /any/where",
            format!(
                "{}reporting: {{ final_reporters: [{{ junit: {{ path: /any/where }} }}] }}\n",
                one_step("echo: { text: hi }")
            ),
            "files:/any",
        ),
        (
            "json: ../x.json",
            format!(
                "{}reporting: {{ final_reporters: [{{ json: {{ path: ../x.json }} }}] }}\n",
                one_step("echo: { text: hi }")
            ),
            "files:DIR",
        ),
        (
            "csv: ../../../../etc/passwd",
            "name: probe\ntests:\n  - name: t\n    targets: { csv: { file: ../../../../etc/passwd, max: 5 } }\n    steps: [{ name: s, echo: { text: hi } }]\n".to_string(),
            "files:DIR",
        ),
        (
            "ConTest's URI fetcher: file:///etc/passwd",
            contest("URI", r#"{"URI": "file:///etc/passwd"}"#),
            "files:/etc",
        ),
        (
            "http: the metadata service",
            one_step("http: { url: 'http://169.254.169.254/latest/meta-data/' }"),
            "net:169.254.169.254",
        ),
        (
            "wait_port: another host's ssh",
            one_step("wait_port: { host: 10.9.8.7, port: 22 }"),
            "net:10.9.8.7",
        ),
        (
            "a million requests per second",
            one_step("load: { url: 'http://localhost:1/', rate: 1000000, duration: 1s }"),
            "1000000 requests per second",
        ),
        (
            "a billion synthetic targets",
            "name: probe\ntests:\n  - name: t\n    targets: { synthetic: { count: 1000000000 } }\n    steps: [{ name: s, echo: { text: hi } }]\n".to_string(),
            "limit of the server's policy",
        ),
    ];
    for (what, descriptor, grant) in &probes {
        let (status, body) = http(&addr, "POST", "/v1/jobs", &token, descriptor);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 403, "{what}: {body}");
        assert!(message.contains(grant), "{what}: {message}");
        assert!(message.contains("project \"teamb\""), "{what}: {message}");
    }
    // Whether a file exists is not told: the same answer for one that does and one that
    // does not.
    let answer = |file: &str| {
        let job = format!(
            "name: probe\ntests:\n  - name: t\n    targets: {{ csv: {{ file: {file}, max: 5 }} }}\n    steps: [{{ name: s, echo: {{ text: hi }} }}]\n"
        );
        let (status, body) = http(&addr, "POST", "/v1/jobs", &token, &job);
        (
            status,
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .replace(file, "FILE"),
        )
    };
    assert_eq!(answer("/etc/passwd"), answer("/etc/no-such-file"));
    // Nothing was made, and the billion targets cost nothing.
    let (status, list) = http(&addr, "GET", "/v1/jobs", &token, "");
    assert_eq!(status, 200);
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(0), "{list}");
    let rss = rss_mib(&server.0);
    assert!(rss < idle_rss + 50, "RSS {rss} MiB, {idle_rss} MiB idle");
    // A job within the policy still runs: its target's own host is reachable.
    let fine = one_step("wait_port: { host: '{{ target.host }}', port: 1, timeout: 200ms }");
    let (status, body) = http(&addr, "POST", "/v1/jobs", &token, &fine);
    assert_eq!(status, 201, "{body}");
}

/// Whether this process may switch users (the server must, for `--run-as`).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn a_project_granted_exec_runs_as_the_run_as_user(backend: TestBackend) {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "--run-as needs root, and CI runs as root"
        );
        eprintln!("skipped: --run-as needs root");
        return;
    }
    let Some(db) = Db::open(backend) else { return };
    let dir = tempfile::tempdir().unwrap();
    // The run_as user must reach the jobs' directories (the server checks it on start).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let jobs = dir.path().join("jobs");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "projects:\n  teamb:\n    allow: [exec, \"files:{}\"]\nprocesses:\n  open_files: 64\n  timeout: 30s\n",
            data.display()
        ),
    )
    .unwrap();
    let teamb = create_token_for(&db.url, "teamb", "teamb");
    let teama = create_token_for(&db.url, "teama", "teama");
    let jobs_dir = jobs.to_str().unwrap();
    let (server, addr) = start_server_in_env(
        &db.url,
        "granted",
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--run-as",
            "nobody",
            "--jobs-dir",
            jobs_dir,
        ],
        &[("STAMPEDE_SECRET_MARKER", "hunter2")],
    );
    let _server = Killed(server);
    let job = format!(
        "name: who\ntests:\n  - name: t\n    steps:\n      - name: s\n        exec: {{ command: sh, args: [\"-c\", \"id -u; pwd; ulimit -n; env\"] }}\nreporting: {{ final_reporters: [{{ json: {{ path: {}/status.json }} }}] }}\n",
        data.display()
    );
    let (status, body) = http(&addr, "POST", "/v1/jobs", &teama, &job);
    assert_eq!(status, 403, "teama has no grant: {body}");
    let (status, body) = http(&addr, "POST", "/v1/jobs", &teamb, &job);
    assert_eq!(status, 201, "{body}");
    let id = body["job_id"].as_u64().unwrap();
    let done = wait_for(&addr, &teamb, id, "completed");
    let target = &done["runs"][0]["tests"][0]["targets"][0];
    assert!(target["error"].is_null(), "{done}");
    let (_, page) = http(&addr, "GET", &format!("/v1/jobs/{id}/events"), &teamb, "");
    let lines: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "CmdStdout")
        .map(|e| e["payload"]["Msg"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("65534"),
        "id -u: {lines:?}"
    );
    let job_dir = format!("{jobs_dir}/job-{id}");
    assert_eq!(lines.get(1), Some(&job_dir), "pwd: {lines:?}");
    assert_eq!(
        lines.get(2).map(String::as_str),
        Some("64"),
        "ulimit -n: {lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("hunter2")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == &format!("HOME={job_dir}")),
        "{lines:?}"
    );
    assert!(
        data.join("status.json").is_file(),
        "written in the granted folder"
    );
    assert!(
        !std::path::Path::new(&job_dir).exists(),
        "removed when the job ended"
    );
}

fn jobs_beyond_the_cap_wait_queued(backend: TestBackend) {
    let Some(db) = Db::open(backend) else { return };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "limits: { jobs_running: 1 }\n").unwrap();
    let token = create_token(&db.url, "default");
    let (server, addr) =
        start_server_with(&db.url, "capped", &["--policy", policy.to_str().unwrap()]);
    let _server = Killed(server);
    let nap = |label: &str| {
        format!(
            "name: {label}\ntests:\n  - name: t\n    steps:\n      - name: s\n        sleep: {{ duration: 1s }}\n"
        )
    };
    let submit = |label: &str| -> u64 {
        let (status, body) = http(&addr, "POST", "/v1/jobs", &token, &nap(label));
        assert_eq!(status, 201, "{body}");
        body["job_id"].as_u64().unwrap()
    };
    let (first, second, third) = (submit("first"), submit("second"), submit("third"));
    let status = |id: u64| -> Value { http(&addr, "GET", &format!("/v1/jobs/{id}"), &token, "").1 };
    assert_eq!(status(second)["queued"], 1, "{}", status(second));
    assert_eq!(status(third)["queued"], 2, "{}", status(third));
    assert_eq!(status(second)["state"], "unknown");
    let (code, body) = http(
        &addr,
        "POST",
        &format!("/v1/jobs/{second}/cancel"),
        &token,
        "",
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(status(second)["state"], "cancelled");
    assert_eq!(status(third)["queued"], 1);
    let started = Instant::now();
    wait_for(&addr, &token, first, "completed");
    let done = wait_for(&addr, &token, third, "completed");
    assert!(done.get("queued").is_none(), "{done}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let (_, events) = http(
        &addr,
        "GET",
        &format!("/v1/jobs/{second}/events"),
        &token,
        "",
    );
    let names: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert!(
        !names.iter().any(|n| n == "JobStateStarted"),
        "never started: {names:?}"
    );
}

#[test]
fn validate_shows_what_a_server_policy_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "projects:\n  teamb: {allow: [exec]}\n").unwrap();
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        "name: j\ntests:\n  - name: t\n    steps:\n      - name: s\n        exec: { command: id }\nreporting: { final_reporters: [{ junit: { path: /srv/out.xml } }] }\n",
    )
    .unwrap();
    let validate = |project: &str| {
        Command::new(BIN)
            .args(["validate", job.to_str().unwrap(), "--server-policy"])
            .args([policy.to_str().unwrap(), "--project", project])
            .output()
            .unwrap()
    };
    let teama = validate("teama");
    let all = text(&teama);
    assert_eq!(teama.status.code(), Some(104), "{all}");
    assert!(
        all.contains("refuses it for project \"teama\" (403), 2 problems"),
        "{all}"
    );
    assert!(
        all.contains("tests[0].steps[0].exec: the `exec` step starts processes"),
        "{all}"
    );
    assert!(
        all.contains("reporting.final_reporters[0].junit.path: /srv/out.xml"),
        "{all}"
    );
    assert!(all.contains("--allow exec,files:/srv"), "{all}");
    let teamb = validate("teamb");
    assert_eq!(
        teamb.status.code(),
        Some(104),
        "the report path is still refused: {}",
        text(&teamb)
    );
    std::fs::write(
        &policy,
        "projects:\n  teamb: {allow: [exec, \"files:/srv\"]}\n",
    )
    .unwrap();
    let granted = validate("teamb");
    assert_eq!(granted.status.code(), Some(0), "{}", text(&granted));
    // Without --server-policy, as before: the user's own machine.
    let out = Command::new(BIN)
        .args(["validate", job.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
