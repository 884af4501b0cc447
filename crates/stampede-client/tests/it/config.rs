//! Layered settings: which layer wins, and errors that name the layer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use stampede_client::{
    ClientConfig, ConfigError, Layer, PartialConfig, config_path, load_file, save_file,
};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn server(url: &str) -> PartialConfig {
    PartialConfig {
        server: Some(url.into()),
        ..PartialConfig::default()
    }
}

#[test]
fn nothing_set_gives_the_defaults() {
    let config =
        ClientConfig::consolidate(None, None, &env(&[]), PartialConfig::default()).unwrap();
    assert_eq!(config, ClientConfig::default());
    assert_eq!(config.server, "http://127.0.0.1:6565");
    assert_eq!(config.token, None);
    assert_eq!(config.timeout, Duration::from_secs(30));
    assert_eq!(config.attempts, 3);
    assert_eq!(config.retry_interval, Duration::from_millis(500));
}

/// Which server wins when the layers marked `true` each set their own.
fn check_server(file: bool, descriptor: bool, environment: bool, flags: bool, expected: &str) {
    let vars = [("STAMPEDE_SERVER", "http://env:1")];
    let config = ClientConfig::consolidate(
        file.then(|| server("http://file:1")),
        descriptor.then(|| server("http://descriptor:1")),
        &env(if environment { &vars } else { &[] }),
        if flags {
            server("http://flags:1")
        } else {
            PartialConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        config.server, expected,
        "file={file} descriptor={descriptor} env={environment} flags={flags}"
    );
}

#[test]
fn each_layer_beats_the_ones_before_it() {
    check_server(false, false, false, false, "http://127.0.0.1:6565");
    check_server(true, false, false, false, "http://file:1");
    check_server(true, true, false, false, "http://descriptor:1");
    check_server(true, true, true, false, "http://env:1");
    check_server(true, true, true, true, "http://flags:1");
    // A later layer wins whatever comes before it.
    check_server(false, true, false, false, "http://descriptor:1");
    check_server(true, false, true, false, "http://env:1");
    check_server(true, true, false, true, "http://flags:1");
    check_server(false, false, true, true, "http://flags:1");
}

#[test]
fn an_unset_field_lets_earlier_layers_show_through() {
    let file = PartialConfig {
        server: Some("http://file:1".into()),
        token: Some("file-token".into()),
        timeout: Some(Duration::from_secs(5)),
        attempts: Some(7),
        retry_interval: Some(Duration::from_millis(100)),
    };
    let descriptor = PartialConfig {
        token: Some("descriptor-token".into()),
        attempts: Some(2),
        ..PartialConfig::default()
    };
    let flags = PartialConfig {
        retry_interval: Some(Duration::from_secs(1)),
        ..PartialConfig::default()
    };
    let config = ClientConfig::consolidate(
        Some(file),
        Some(descriptor),
        &env(&[
            ("STAMPEDE_TIMEOUT", "1m30s"),
            ("STAMPEDE_TOKEN", "env-token"),
        ]),
        flags,
    )
    .unwrap();
    assert_eq!(
        config,
        ClientConfig {
            server: "http://file:1".into(),
            token: Some("env-token".into()),
            timeout: Duration::from_secs(90),
            attempts: 2,
            retry_interval: Duration::from_secs(1),
        }
    );
    // The token never shows in debug output.
    assert!(!format!("{config:?}").contains("env-token"));
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    let config = ClientConfig::consolidate(
        Some(server("http://file:1")),
        None,
        &env(&[("STAMPEDE_SERVER", ""), ("STAMPEDE_TIMEOUT", "")]),
        PartialConfig::default(),
    )
    .unwrap();
    assert_eq!(config.server, "http://file:1");
    assert_eq!(config.timeout, Duration::from_secs(30));
}

fn check_error(
    file: Option<PartialConfig>,
    vars: &[(&str, &str)],
    flags: PartialConfig,
    layer: Layer,
    expected: &str,
) {
    let error = ClientConfig::consolidate(file, None, &env(vars), flags).unwrap_err();
    assert_eq!(error.to_string(), expected);
    assert!(
        matches!(error, ConfigError::Invalid { layer: Some(l), .. } if l == layer),
        "{error:?}"
    );
}

#[test]
fn a_bad_value_is_reported_with_its_layer() {
    check_error(
        None,
        &[("STAMPEDE_TIMEOUT", "abc")],
        PartialConfig::default(),
        Layer::Env,
        r#"STAMPEDE_TIMEOUT="abc": not a duration (write it like 30s, 1m30s or 500ms)"#,
    );
    check_error(
        Some(server("ftp://jobs")),
        &[],
        PartialConfig::default(),
        Layer::File,
        r#"server "ftp://jobs" (from the config file): write the server's URL like http://HOST:PORT"#,
    );
    check_error(
        None,
        &[("STAMPEDE_SERVER", "https://jobs:6565")],
        PartialConfig::default(),
        Layer::Env,
        r#"STAMPEDE_SERVER="https://jobs:6565": https is not supported yet; reach the server over http://HOST:PORT"#,
    );
    check_error(
        None,
        &[],
        PartialConfig {
            attempts: Some(0),
            ..PartialConfig::default()
        },
        Layer::Flags,
        r#"attempts "0" (from the command line): a call makes at least 1 attempt"#,
    );
    check_error(
        None,
        &[("STAMPEDE_TOKEN", "has space")],
        PartialConfig::default(),
        Layer::Env,
        r#"STAMPEDE_TOKEN="<hidden>": a token is printable ASCII without spaces; copy it again from `stampede server token create`"#,
    );
    // A bad value overridden by a later layer does no harm.
    let config = ClientConfig::consolidate(
        Some(server("ftp://jobs")),
        None,
        &env(&[]),
        server("http://jobs:6565/prefix/"),
    )
    .unwrap();
    assert_eq!(config.server, "http://jobs:6565/prefix/");
}

fn check_path(vars: &[(&str, &str)], expected: Option<&str>) {
    assert_eq!(
        config_path(&env(vars)),
        expected.map(PathBuf::from),
        "{vars:?}"
    );
}

#[test]
fn the_config_file_is_found_in_the_usual_places() {
    check_path(
        &[
            ("STAMPEDE_CONFIG", "/etc/s.json"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ],
        Some("/etc/s.json"),
    );
    check_path(
        &[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")],
        Some("/x/stampede/config.json"),
    );
    check_path(&[("HOME", "/h")], Some("/h/.config/stampede/config.json"));
    check_path(
        &[("HOME", "/h"), ("XDG_CONFIG_HOME", "")],
        Some("/h/.config/stampede/config.json"),
    );
    check_path(&[], None);
}

#[test]
fn the_config_file_round_trips_and_only_its_owner_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stampede").join("config.json");
    assert_eq!(load_file(&path).unwrap(), None, "no file is no layer");
    let saved = PartialConfig {
        server: Some("http://jobs:6565".into()),
        token: Some("secret".into()),
        timeout: Some(Duration::from_secs(45)),
        ..PartialConfig::default()
    };
    save_file(&path, &saved).unwrap();
    assert_eq!(load_file(&path).unwrap(), Some(saved.clone()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""timeout": "45s""#), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // `stampede login` merges a new token into what is there.
    let merged = saved.merge(PartialConfig {
        token: Some("newer".into()),
        ..PartialConfig::default()
    });
    save_file(&path, &merged).unwrap();
    let loaded = load_file(&path).unwrap().unwrap();
    assert_eq!(loaded.token.as_deref(), Some("newer"));
    assert_eq!(loaded.server.as_deref(), Some("http://jobs:6565"));
}

#[test]
fn a_broken_config_file_says_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    for (text, expected) in [
        (r#"{"timeout": "abc"}"#, "not a duration"),
        (
            r#"{"server": "http://x", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        ("{", "EOF"),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = load_file(&path).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("cannot read the config file {}", path.display())),
            "{message}"
        );
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
}
