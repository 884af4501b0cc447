//! End-to-end: the `robustness` step run by the real binary, against real tar and rsync
//! through the command snapshotter and against a real `stampede sut --snap-dir` (started by
//! the step on port 0, killed with SIGKILL and restarted on the same port), with and without
//! its bugs, and against real restic (which must be installed); each tool also with a
//! snapshot command that skips a file.

use std::path::Path;

use serde_json::Value;

use super::{BIN, run_job, stampede, text, validate};

/// The tar templates of `examples/robustness-tar.yaml`; `extra` goes into the snapshot's
/// tar options (a deliberately broken `--exclude`).
fn tar(extra: &str) -> String {
    format!(
        r#"
            command:
              repo: "{{work}}/repo"
              start_server: "mkdir -p {{repo}}"
              snapshot: "id={{client}}-$(date +%s%N); tar {extra} -C {{source}} -cf {{repo}}/$id.tar . && echo $id"
              restore: "tar -C {{target}} -xf {{repo}}/{{id}}.tar"
              delete: "rm {{repo}}/{{id}}.tar"
              list: "cd {{repo}} && for f in *.tar; do [ -e \"$f\" ] && echo \"${{f%.tar}}\"; done; true"
              timeout: 1m"#
    )
}

/// The sut's store started by the step, with `bugs` switched on.
fn sut(bugs: &str) -> String {
    let bugs = if bugs.is_empty() {
        String::new()
    } else {
        format!(" --snap-bugs {bugs}")
    };
    format!(
        r#"
            http:
              server: "'{BIN}' sut --addr 127.0.0.1:{{port}} --snap-dir {{work}}/store --snap-admin-token adm{bugs}"
              admin_token: adm
              timeout: 30s"#
    )
}

/// Small trees, at the step's config indentation.
const SMALL: &str = "          writer: { max_depth: 2, branching: 2, min_files_per_write: 3, max_files_per_write: 10, max_file_size: 20000, free_space_floor_bytes: 0 }";

/// A one-step job: `clients` clients on `snapshotter` with `rest` (YAML at the step's
/// config indentation; small trees unless it has a `writer`), working in `data` (kept
/// there, not in the system's temp directory, when the step fails).
fn job(data: &Path, snapshotter: &str, clients: u32, rest: &str) -> String {
    let data = data.display();
    let writer = if rest.contains("writer:") { "" } else { SMALL };
    format!(
        r#"name: robust
tests:
  - name: t
    targets: {{ synthetic: {{ count: 1, prefix: local }} }}
    steps:
      - name: robust
        timeout: 3m
        robustness:
          clients: {clients}
          seed: 7
          data_dir: {data}
          snapshotter:{snapshotter}
{writer}
{rest}
reporting:
  run_reporters: [{{ target_success: "=100%" }}]
"#
    )
}

const ONE_ROUND: &str = "          body:
            - action: write-files
            - action: snapshot
            - action: restore-compare";

/// The robustness statistics of the only robustness step in a summary.
fn stats(summary: &Value) -> &Value {
    let all = summary["robustness"].as_array().expect("robustness stats");
    assert_eq!(all.len(), 1, "{summary:#}");
    &all[0]
}

/// The text of `examples/<file>`.
fn example(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The command snapshotter of the first step of `examples/<file>`, for [`job`]; with
/// `broken = Some((from, to))`, `from` is replaced by `to` in its snapshot command.
fn example_snapshotter(file: &str, broken: Option<(&str, &str)>) -> String {
    let job: Value = serde_saphyr::from_str(&example(file)).unwrap();
    let mut snapshotter = job["tests"][0]["steps"][0]["robustness"]["snapshotter"].clone();
    if let Some((from, to)) = broken {
        let snapshot = &mut snapshotter["command"]["snapshot"];
        let command = snapshot.as_str().expect("a snapshot command").to_string();
        assert!(command.contains(from), "{from:?} is not in {command:?}");
        *snapshot = Value::from(command.replacen(from, to, 1));
    }
    // JSON is YAML: the snapshotter goes in as one flow mapping.
    format!(" {snapshotter}")
}

/// Kopia's six multiclient tests, as the tar, rsync and sut examples name their steps.
const KOPIA: [&str; 6] = [
    "many-small-files",
    "one-large-file",
    "many-small-files-across-tree",
    "randomized",
    "gc-while-clients-work",
    "delete-random-snapshot",
];

/// Runs `examples/<file>` and checks that each of kopia's six tests (`test/<name>`) passed
/// for 4 clients with snapshots verified, and that every client's two `gc` actions ran while
/// the clients worked; their statistics.
fn check_example(file: &str, test: &str) -> Vec<Value> {
    let (out, summary) = run_job(&example(file));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let steps = summary["robustness"].as_array().expect("robustness stats");
    let names: Vec<_> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let expected = KOPIA.map(|k| format!("{test}/{k}"));
    assert_eq!(names, expected);
    for s in steps {
        assert_eq!(s["passed"], true, "{s:#}");
        assert_eq!(s["clients"], 4, "{s:#}");
        assert_eq!(s["per_client"].as_array().unwrap().len(), 4, "{s:#}");
        assert!(s["snapshots_verified"].as_u64().unwrap() >= 4, "{s:#}");
    }
    let all = text(&out);
    for name in expected {
        assert!(
            all.contains(&format!("{name} on local-1 — PASSED")),
            "{all}"
        );
    }
    let gc = &steps[4];
    assert!(gc["total"]["gc"]["count"].as_u64().unwrap() >= 8, "{gc:#}");
    steps.clone()
}

/// Runs one round of 2 clients, 3 files each, on `snapshotter`, whose snapshot command
/// skips `file_1`, in `data`; checks that the step fails with a report naming the file.
/// Returns the job.
fn check_a_skipped_file_is_named(data: &Path, snapshotter: &str) -> String {
    let rest = "          writer: { max_depth: 0, min_files_per_write: 3, max_files_per_write: 3, free_space_floor_bytes: 0 }\n".to_string() + ONE_ROUND;
    let yaml = job(data, snapshotter, 2, &rest);
    let (out, summary) = run_job(&yaml);
    assert_eq!(out.status.code(), Some(97), "{}", text(&out));
    let s = stats(&summary);
    assert_eq!(s["passed"], false, "{s:#}");
    let failures = s["failures"].to_string();
    assert!(failures.contains("deleted: file_1 (file)"), "{failures}");
    let all = text(&out);
    assert!(all.contains("deleted: file_1 (file)"), "{all}");
    assert!(all.contains("FAILED"), "{all}");
    yaml
}

#[test]
fn the_tar_example_runs_kopias_six_tests_and_passes() {
    check_example("robustness-tar.yaml", "tar");
}

#[test]
fn the_rsync_example_runs_kopias_six_tests_and_passes() {
    check_example("robustness-rsync.yaml", "rsync");
}

#[test]
fn an_rsync_command_that_skips_a_file_is_caught_and_the_file_named() {
    let skips_file_1 = (
        "rsync -a --delete {source}",
        "rsync -a --delete --exclude=/file_1 {source}",
    );
    let rsync = example_snapshotter("robustness-rsync.yaml", Some(skips_file_1));
    let data = tempfile::tempdir().unwrap();
    check_a_skipped_file_is_named(data.path(), &rsync);
}

#[test]
fn the_sut_example_runs_kopias_six_tests_and_passes_through_kills() {
    let steps = check_example("robustness-sut.yaml", "sut");
    assert!(
        steps[3]["server_restarts"].as_u64().unwrap() >= 2,
        "{:#}",
        steps[3]
    );
}

#[test]
fn running_out_of_space_is_recovered_from_as_kopia_does() {
    // A free-space floor no disk has: every write fails with "no space left", and each
    // time the client restores a live snapshot into its data directory and goes on.
    let rest = "          writer: { max_depth: 1, max_files_per_write: 3, free_space_floor_bytes: 1000000000000000000 }
          randomized: { duration: 1s, weights: { write-files: 1, snapshot: 1 } }";
    let data = tempfile::tempdir().unwrap();
    let (out, summary) = run_job(&job(data.path(), &tar(""), 2, rest));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stats(&summary);
    let writes = &s["total"]["write-files"];
    assert!(writes["errors"].as_u64().unwrap() >= 1, "{s:#}");
    assert_eq!(writes["errors"], writes["count"], "{s:#}");
    let recoveries = &s["total"]["restore-into-data-dir"]["count"];
    assert_eq!(recoveries, &writes["errors"], "{s:#}");
}

#[test]
fn a_tar_command_that_skips_a_file_is_caught_and_the_file_named() {
    let data = tempfile::tempdir().unwrap();
    let yaml = check_a_skipped_file_is_named(data.path(), &tar("--exclude=./file_1"));

    // The JUnit case fails with the report and carries the figures as its output.
    let dir = tempfile::tempdir().unwrap();
    let (file, xml) = (dir.path().join("job.yaml"), dir.path().join("junit.xml"));
    std::fs::write(&file, &yaml).unwrap();
    let out = stampede(&[
        "run",
        file.to_str().unwrap(),
        "--no-progress",
        "--junit",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(97), "{}", text(&out));
    let xml = std::fs::read_to_string(xml).unwrap();
    assert!(
        xml.contains("<failure") && xml.contains("deleted: file_1 (file)"),
        "{xml}"
    );
    assert!(
        xml.contains("<system-out>") && xml.contains("snapshots verified"),
        "{xml}"
    );
}

#[test]
fn the_sut_store_survives_sigkills_between_actions() {
    let rest = "          faults: { restart_server_every: 6, restart_client_every: 5 }
          randomized:
            duration: 6s
            weights: { snapshot: 2, restore-compare: 2, delete-snapshot: 1, write-files: 2, delete-subdirectory: 1, delete-files: 1 }";
    let data = tempfile::tempdir().unwrap();
    let (out, summary) = run_job(&job(data.path(), &sut(""), 4, rest));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stats(&summary);
    assert_eq!(s["passed"], true, "{s:#}");
    assert!(s["server_restarts"].as_u64().unwrap() >= 2, "{s:#}");
    assert!(s["snapshots_verified"].as_u64().unwrap() >= 4, "{s:#}");
    assert!(
        s["total"]["snapshot"]["count"].as_u64().unwrap() >= 4,
        "{s:#}"
    );
}

#[test]
fn each_bug_switch_of_the_sut_store_is_caught_and_the_damaged_file_named() {
    for (bug, rest, expected) in [
        ("drop-file", ONE_ROUND.to_string(), "deleted: "),
        ("flip-byte", ONE_ROUND.to_string(), "content differs"),
        (
            "lose-last-write",
            // The final restart is what loses the newest snapshot.
            "          faults: { restart_server_every: 1000 }
          body:
            - action: write-files
            - action: snapshot"
                .to_string(),
            "was acknowledged but cannot be restored",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let (out, summary) = run_job(&job(data.path(), &sut(bug), 4, &rest));
        assert_eq!(out.status.code(), Some(97), "{bug}: {}", text(&out));
        let s = stats(&summary);
        assert_eq!(s["passed"], false, "{bug}: {s:#}");
        let failures = s["failures"].to_string();
        assert!(failures.contains(expected), "{bug}: {failures}");
        assert!(
            failures.contains("file_"),
            "{bug}: the file is named: {failures}"
        );
    }
}

#[test]
fn a_later_run_restores_and_checks_the_snapshots_of_earlier_runs() {
    let data = tempfile::tempdir().unwrap();
    let yaml = job(data.path(), &tar(""), 2, ONE_ROUND)
        .replace("name: robust\ntests:", "name: robust\nruns: 2\ntests:");
    let (out, summary) = run_job(&yaml);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs = summary["robustness"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{summary:#}");
    assert_eq!(runs[0]["earlier_verified"], 0);
    assert_eq!(runs[1]["earlier_verified"], 2, "{:#}", runs[1]);

    // In a temporary directory per run, the earlier repository is gone: nothing to check.
    let in_temp = yaml.replace(
        &format!("          data_dir: {}\n", data.path().display()),
        "",
    );
    assert_ne!(in_temp, yaml);
    let (out, summary) = run_job(&in_temp);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs = summary["robustness"].as_array().unwrap();
    assert_eq!(runs[1]["earlier_verified"], 0, "{:#}", runs[1]);
}

#[test]
fn validate_rejects_a_bad_robustness_config_with_its_place() {
    let (out, all) = validate(
        r#"name: bad
tests:
  - name: t
    steps:
      - name: r
        robustness:
          clients: 0
          snapshotter:
            command: { repo: /tmp/r, snapshot: "tar -cf x .", restore: "tar -xf {id}", delete: "rm {id}" }
          body:
            - action: snapshot
              repeat: 0
          faults: { restart_server_every: 5 }
"#,
    );
    assert_eq!(out.status.code(), Some(104), "{all}");
    for expected in [
        "tests[0].steps[0].robustness.clients: must be between 1 and 256",
        "tests[0].steps[0].robustness.body[0].repeat: must be at least 1",
        "tests[0].steps[0].robustness.snapshotter.command: invalid snapshotter configuration: the snapshot command must use {source}",
        "tests[0].steps[0].robustness.snapshotter.command.server: restarting the server needs the server's command",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    let (out, all) = validate(
        "name: bad\ntests:\n  - name: t\n    steps:\n      - name: r\n        robustness: { clients: 2, snapshoter: {} }\n",
    );
    assert_eq!(out.status.code(), Some(104), "{all}");
    assert!(text(&out).contains("snapshoter"), "{}", text(&out));
}

/// Fails, saying how to install it, when restic is missing: the restic tests never skip.
fn require_restic() {
    let version = std::process::Command::new("restic").arg("version").output();
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "restic is not installed: `apt-get install restic` (.ci/run does)"
    );
}

#[test]
fn the_restic_example_is_valid_and_its_snapshotter_passes_a_round_with_gc_and_deletes() {
    require_restic();
    let (out, all) = validate(&example("robustness-restic.yaml"));
    assert_eq!(out.status.code(), Some(0), "{all}");
    // The example's steps take a minute; one short round covers every command but list:
    // an empty data directory (no restic call), backup, prune, restore, forget.
    let restic = example_snapshotter("robustness-restic.yaml", None);
    let rest = "          body:
            - action: snapshot
            - action: write-files
            - action: snapshot
            - action: gc
            - action: restore-compare
            - action: delete-snapshot
            - action: write-files
            - action: snapshot";
    let data = tempfile::tempdir().unwrap();
    let (out, summary) = run_job(&job(data.path(), &restic, 2, rest));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stats(&summary);
    assert_eq!(s["passed"], true, "{s:#}");
    assert_eq!(s["total"]["gc"]["count"], 2, "{s:#}");
    assert_eq!(s["total"]["delete-snapshot"]["errors"], 0, "{s:#}");
    // Two restore-compares, and at the end at least two live snapshots of each client.
    assert!(s["snapshots_verified"].as_u64().unwrap() >= 6, "{s:#}");
}

#[test]
fn a_restic_backup_that_skips_a_file_is_caught_and_the_file_named() {
    require_restic();
    let skips_file_1 = (" backup ", " backup --exclude=file_1 ");
    let restic = example_snapshotter("robustness-restic.yaml", Some(skips_file_1));
    let data = tempfile::tempdir().unwrap();
    check_a_skipped_file_is_named(data.path(), &restic);
}

#[test]
fn a_command_snapshotters_server_is_killed_restarted_and_gone_after_the_step() {
    let data = tempfile::tempdir().unwrap();
    let pids = data.path().join("pids");
    let current = data.path().join("current");
    // Each start records its pid, then says it is up (the pid it wrote lives: the one
    // before was killed and reaped), so the last start is recorded before the step ends;
    // `exec` makes the shell leading the group the server.
    let server = format!(
        "\n              server: \"echo $$ >> '{pids}'; echo $$ > '{current}'; exec sleep 600\"\
         \n              server_ready: \"kill -0 $(cat '{current}')\"",
        pids = pids.display(),
        current = current.display(),
    );
    let rest = format!("          faults: {{ restart_server_every: 2 }}\n{ONE_ROUND}");
    let (out, summary) = run_job(&job(data.path(), &(tar("") + &server), 2, &rest));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stats(&summary);
    let restarts = s["server_restarts"].as_u64().unwrap();
    assert!(restarts >= 2, "{s:#}");
    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len() as u64, restarts + 1, "{pids:?}");
    // Killed: gone, or a zombie waiting for init to reap it.
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z"))
    };
    let running: Vec<_> = pids.iter().filter(|pid| alive(pid)).collect();
    assert!(running.is_empty(), "servers outlived the step: {running:?}");
}
