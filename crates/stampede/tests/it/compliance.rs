//! Every step of the binary's registry passes the job crate's compliance test
//! (`stampede_job::compliance`): documented schema, path-qualified problems, a cancel
//! honoured within a second, well-formed events, a JUnit case. The registry is the
//! binary's own list, compiled in here; a step registered without a case here fails.

use std::net::TcpListener;

use serde_json::{Value, json};
use stampede_job::compliance::{Case, check};

#[path = "../../src/steps.rs"]
mod steps;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The tar snapshotter of examples/robustness-tar.yaml.
fn tar() -> Value {
    json!({ "command": {
        "repo": "{work}/repo",
        "start_server": "mkdir -p {repo}",
        "snapshot": "id={client}-$(date +%s%N); tar -C {source} -cf {repo}/$id.tar . && echo $id",
        "restore": "tar -C {target} -xf {repo}/{id}.tar",
        "delete": "rm {repo}/{id}.tar",
    }})
}

/// A case for every built-in step: `silent` accepts connections and never answers,
/// `closed` refuses them.
fn cases(silent: u16, closed: u16) -> Vec<Case> {
    let case = |key, config, bad| Case {
        key,
        config,
        ends_at_once: false,
        bad,
        target: None,
    };
    let at_once = |key, config, bad| Case {
        ends_at_once: true,
        ..case(key, config, bad)
    };
    vec![
        case(
            "load",
            json!({ "url": format!("http://127.0.0.1:{closed}/"), "rate": 10, "duration": "60s" }),
            json!({ "url": "http://127.0.0.1:1/", "rate": 0, "duration": "1s" }),
        ),
        case(
            "exec",
            json!({ "command": "sleep", "args": ["60"] }),
            json!({ "command": "true", "nope": 1 }),
        ),
        case(
            "sleep",
            json!({ "duration": "60s" }),
            json!({ "duration": "soon" }),
        ),
        case(
            "http",
            json!({ "url": format!("http://127.0.0.1:{silent}/"), "timeout": "60s" }),
            json!({ "url": "nope" }),
        ),
        case(
            "wait_port",
            json!({ "host": "127.0.0.1", "port": closed, "timeout": "60s", "check_interval": "100ms" }),
            json!({ "host": "", "port": 0 }),
        ),
        at_once(
            "echo",
            json!({ "text": "hi" }),
            json!({ "text": "{{ .Nope }}" }),
        ),
        at_once("randecho", json!({ "text": "hi" }), json!({ "text": 5 })),
        case(
            "scale",
            json!({ "runners": 2, "phases": [
                { "name": "call", "http": { "url": format!("http://127.0.0.1:{silent}/") } }
            ]}),
            json!({ "runners": 0, "phases": [{ "name": "m", "mark": { "name": "m" } }] }),
        ),
        case(
            "robustness",
            json!({ "clients": 1, "seed": 1, "snapshotter": tar(),
                    "writer": { "max_files_per_write": 2, "max_file_size": 1024, "free_space_floor_bytes": 0 },
                    "randomized": { "duration": "60s" } }),
            json!({ "clients": 0, "snapshotter": tar(), "body": [{ "action": "snapshot" }] }),
        ),
    ]
}

#[test]
fn every_registered_step_complies() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let cases = cases(silent.local_addr().unwrap().port(), closed_port());
    let registry = steps::registry();
    let mut failures = Vec::new();
    for key in registry.keys() {
        if !cases.iter().any(|c| c.key == key) {
            failures.push(format!("{key}: no compliance case; add one in {}", file!()));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for case in &cases {
        let found = tokio::task::LocalSet::new().block_on(&runtime, check(&registry, case));
        failures.extend(found.into_iter().map(|f| format!("{}: {f}", case.key)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
