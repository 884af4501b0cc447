//! ConTest v1.0 descriptors, translated to the native form (seeds-spec §2.2, §2.7).
//!
//! Keys are Go struct fields, matched case-insensitively (`JobName`, `jobname`); durations
//! are Go duration strings; step parameters are lists of values whose strings are Go
//! templates over the target (`{{ .FQDN }}`, `{{ ToUpper .ID }}`) — the template engine reads
//! those as they are. Test steps come from a test fetcher (`literal` or `URI`), fetched
//! here, once: the native form that comes out is the extended descriptor, so a resumed job
//! never fetches again.
//!
//! ConTest's plugins map to native ones: target managers `TargetList` (and the test-only
//! `TargetListWithState`) → `list`, `CSVFileTargetManager` → `csv`; steps `cmd` → `exec`,
//! `echo`, `randecho`, `sleep`, `waitport` → `wait_port`; reporters `TargetSuccess` →
//! `target_success`, `noop`. A native step name (`load`, `http`, ...) is accepted too, its
//! parameters' single values becoming its fields. Labels follow ConTest's rules (mandatory,
//! `[a-zA-Z]\w*`), which is why two of ConTest's own samples are refused, as ConTest
//! refuses them.

use serde_json::{Map, Value, json};

use crate::access::Access;
use crate::registry::Registry;
use crate::step::Problem;

/// Whether `value` is a ConTest descriptor (it has `JobName` or `TestDescriptors`).
pub(crate) fn is_contest(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| get(o, "JobName").is_some() || get(o, "TestDescriptors").is_some())
}

/// The value of `key` in a Go-decoded object, whatever its case.
fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// Lower-cases every key of every object inside `value` (Go's case-insensitive decoding).
fn lower_keys(value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), lower_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_keys).collect()),
        other => other.clone(),
    }
}

struct Translator<'a> {
    files: &'a Access,
    registry: &'a Registry,
    problems: Vec<Problem>,
    /// Files it may not read (a job server's job).
    refused: Vec<Problem>,
}

impl Translator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn object<'v>(
        &mut self,
        value: Option<&'v Value>,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.problem(path, format!("expected an object, found {other}"));
                None
            }
            None => {
                self.problem(path, "missing");
                None
            }
        }
    }

    fn job(&mut self, top: &Map<String, Value>) -> Value {
        let mut out = Map::new();
        if let Some(version) = get(top, "Version") {
            out.insert("version".into(), version.clone());
        }
        match get(top, "JobName") {
            Some(Value::String(name)) => {
                out.insert("name".into(), json!(name));
            }
            _ => self.problem("JobName", "give the job a name (JobName)"),
        }
        if let Some(tags) = get(top, "Tags") {
            out.insert("tags".into(), tags.clone());
        }
        match get(top, "Runs") {
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                out.insert("runs".into(), Value::Number(n.clone()));
            }
            Some(other) => self.problem(
                "Runs",
                format!("{other} is not a number of runs (0 runs forever)"),
            ),
            None => {}
        }
        if let Some(interval) = get(top, "RunInterval") {
            out.insert("run_interval".into(), interval.clone());
        }
        let timeouts = [
            ("acquire_timeout", get(top, "TargetManagerAcquireTimeout")),
            ("release_timeout", get(top, "TargetManagerReleaseTimeout")),
        ];
        let mut tests = Vec::new();
        match get(top, "TestDescriptors") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, test) in list.iter().enumerate() {
                    let path = format!("TestDescriptors[{i}]");
                    if let Some(test) = self.object(Some(test), &path) {
                        let mut native = self.test(test, &path);
                        for (key, timeout) in &timeouts {
                            if let Some(timeout) = timeout {
                                native.insert((*key).into(), (*timeout).clone());
                            }
                        }
                        tests.push(Value::Object(native));
                    }
                }
            }
            _ => self.problem("TestDescriptors", "give at least one test descriptor"),
        }
        out.insert("tests".into(), Value::Array(tests));
        out.insert("reporting".into(), self.reporting(get(top, "Reporting")));
        Value::Object(out)
    }

    fn test(&mut self, test: &Map<String, Value>, path: &str) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(disabled) = get(test, "Disabled") {
            out.insert("disabled".into(), disabled.clone());
        }
        if let Some(retry) = get(test, "RetryParameters").and_then(Value::as_object) {
            let mut retries = Map::new();
            retries.insert(
                "count".into(),
                get(retry, "NumRetries").cloned().unwrap_or(json!(0)),
            );
            if let Some(interval) = get(retry, "RetryInterval") {
                retries.insert("interval".into(), interval.clone());
            }
            out.insert("retries".into(), Value::Object(retries));
        }
        if let Some(targets) = self.targets(test, path) {
            out.insert("targets".into(), targets);
        }
        let (name, steps) = self.fetch(test, path);
        out.insert("name".into(), json!(name));
        out.insert("steps".into(), Value::Array(steps));
        out
    }

    fn targets(&mut self, test: &Map<String, Value>, path: &str) -> Option<Value> {
        let name = get(test, "TargetManagerName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params_path = format!("{path}.TargetManagerAcquireParameters");
        let params = get(test, "TargetManagerAcquireParameters").map(lower_keys);
        match name.to_ascii_lowercase().as_str() {
            "targetlist" | "targetlistwithstate" => {
                let params = self.object(params.as_ref(), &params_path)?;
                match params.get("targets") {
                    Some(targets @ Value::Array(_)) => Some(json!({ "list": targets })),
                    _ => {
                        self.problem(
                            format!("{params_path}.Targets"),
                            "give the targets, e.g. [{\"ID\": \"1\", \"FQDN\": \"host\"}]",
                        );
                        None
                    }
                }
            }
            "csvfiletargetmanager" => {
                let params = self.object(params.as_ref(), &params_path)?;
                let mut csv = Map::new();
                for (from, to) in [
                    ("fileuri", "file"),
                    ("minnumberdevices", "min"),
                    ("maxnumberdevices", "max"),
                    ("hostprefixes", "host_prefixes"),
                    ("shuffle", "shuffle"),
                ] {
                    if let Some(value) = params.get(from).filter(|v| !v.is_null()) {
                        csv.insert(to.into(), value.clone());
                    }
                }
                if !csv.contains_key("file") {
                    self.problem(format!("{params_path}.FileURI"), "give the CSV file");
                }
                // ConTest's MaxNumberDevices 0 means no limit.
                if csv.get("max") == Some(&json!(0)) {
                    csv.remove("max");
                }
                Some(json!({ "csv": csv }))
            }
            "" => {
                self.problem(
                    format!("{path}.TargetManagerName"),
                    "give a target manager: TargetList or CSVFileTargetManager",
                );
                None
            }
            other => {
                self.problem(
                    format!("{path}.TargetManagerName"),
                    format!("target manager {other:?} is not supported; use TargetList or CSVFileTargetManager"),
                );
                None
            }
        }
    }

    /// The test's name and its steps, from the test fetcher.
    fn fetch(&mut self, test: &Map<String, Value>, path: &str) -> (String, Vec<Value>) {
        let fetcher = get(test, "TestFetcherName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params_path = format!("{path}.TestFetcherFetchParameters");
        let Some(params) = self.object(get(test, "TestFetcherFetchParameters"), &params_path)
        else {
            return (String::new(), Vec::new());
        };
        let name = match get(params, "TestName") {
            Some(Value::String(name)) => name.clone(),
            _ => {
                self.problem(format!("{params_path}.TestName"), "give the test a name");
                String::new()
            }
        };
        let (steps, steps_path) = match fetcher.to_ascii_lowercase().as_str() {
            "literal" => (
                get(params, "Steps").cloned(),
                format!("{params_path}.Steps"),
            ),
            "uri" => match self.fetch_uri(params, &params_path) {
                Some((steps, origin)) => (steps, origin),
                None => return (name, Vec::new()),
            },
            other => {
                self.problem(
                    format!("{path}.TestFetcherName"),
                    format!("test fetcher {other:?} is not supported; use literal or URI"),
                );
                return (name, Vec::new());
            }
        };
        let steps = match steps {
            Some(Value::Array(steps)) if !steps.is_empty() => steps,
            _ => {
                self.problem(steps_path, "at least one test step is required per test");
                return (name, Vec::new());
            }
        };
        let steps = steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| self.step(step, &format!("{steps_path}[{i}]")))
            .collect();
        (name, steps)
    }

    /// The steps of a `URI` fetcher: a local file (relative to the descriptor) or `file://`.
    fn fetch_uri(
        &mut self,
        params: &Map<String, Value>,
        path: &str,
    ) -> Option<(Option<Value>, String)> {
        let Some(uri) = get(params, "URI").and_then(Value::as_str) else {
            self.problem(format!("{path}.URI"), "give the URI of the steps file");
            return None;
        };
        if uri.starts_with("http://") || uri.starts_with("https://") {
            self.problem(format!("{path}.URI"), format!("{uri}: only files are fetched (a path or file://); download it and give its path"));
            return None;
        }
        let file = match self.files.path(uri.strip_prefix("file://").unwrap_or(uri)) {
            Ok(file) => file,
            Err(refused) => {
                let message = format!("{} (needs the grant `{}`)", refused.message, refused.grant);
                self.refused
                    .push(Problem::new(format!("{path}.URI"), message));
                return None;
            }
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                self.problem(
                    format!("{path}.URI"),
                    format!("cannot read {}: {e}", file.display()),
                );
                return None;
            }
        };
        let document: Value = match serde_json::from_str(&text) {
            Ok(document) => document,
            Err(e) => {
                self.problem(
                    format!("{path}.URI"),
                    format!("{} is not JSON: {e}", file.display()),
                );
                return None;
            }
        };
        let steps = document.as_object().and_then(|o| get(o, "Steps")).cloned();
        Some((steps, format!("{}: steps", file.display())))
    }

    fn step(&mut self, step: &Value, path: &str) -> Option<Value> {
        let step = self.object(Some(step), path)?;
        let plugin = get(step, "name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let label = get(step, "label")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if label.is_empty() {
            self.problem(
                format!("{path}.label"),
                format!("step has no label, but it is mandatory (step: {plugin})"),
            );
            return None;
        }
        if !is_label(label) {
            self.problem(
                format!("{path}.label"),
                format!("'{label}' doesn't match variable name format: a label is a letter followed by letters, digits or '_'"),
            );
            return None;
        }
        let params = match get(step, "parameters") {
            Some(Value::Object(params)) => params.clone(),
            None => Map::new(),
            Some(other) => {
                self.problem(
                    format!("{path}.parameters"),
                    format!("expected an object of value lists, found {other}"),
                );
                return None;
            }
        };
        let one = |key: &str| {
            params
                .get(key)
                .and_then(|v| v.as_array())
                .and_then(|a| a.first())
                .cloned()
        };
        let (kind, mut config) = match plugin.as_str() {
            "cmd" => {
                let mut config = Map::new();
                config.insert("command".into(), one("executable").unwrap_or(Value::Null));
                config.insert(
                    "args".into(),
                    params.get("args").cloned().unwrap_or(json!([])),
                );
                if let Some(dir) = one("dir") {
                    config.insert("dir".into(), dir);
                }
                // ConTest writes the output as events only when asked.
                for flag in ["emit_stdout", "emit_stderr"] {
                    let value = one(flag).map_or(json!(false), boolean);
                    config.insert(flag.into(), value);
                }
                ("exec", config)
            }
            "waitport" => {
                let mut config = Map::new();
                for (from, to) in [
                    ("target", "host"),
                    ("port", "port"),
                    ("protocol", "protocol"),
                    ("check_interval", "check_interval"),
                    ("timeout", "timeout"),
                ] {
                    if let Some(value) = one(from) {
                        config.insert(to.into(), value);
                    }
                }
                if let Some(Value::String(port)) = config.get("port")
                    && let Ok(number) = port.trim().parse::<u16>()
                {
                    config.insert("port".into(), json!(number));
                }
                ("wait_port", config)
            }
            native if self.registry.get(native).is_some() => {
                let config = params
                    .iter()
                    .map(|(k, v)| {
                        let value = match v {
                            Value::Array(list) if list.len() == 1 && k != "args" => list[0].clone(),
                            other => other.clone(),
                        };
                        (k.clone(), value)
                    })
                    .collect();
                (native, config)
            }
            other => {
                self.problem(
                    format!("{path}.name"),
                    format!(
                        "step plugin {other:?} is not supported; use ConTest's cmd or waitport, or a step: {}",
                        self.registry.keys().join(", ")
                    ),
                );
                return None;
            }
        };
        config.retain(|_, v| !v.is_null());
        Some(json!({ "name": label, kind: Value::Object(std::mem::take(&mut config)) }))
    }

    fn reporting(&mut self, reporting: Option<&Value>) -> Value {
        let mut out = Map::new();
        let reporting = reporting.and_then(Value::as_object);
        let mut total = 0;
        for (from, to) in [
            ("RunReporters", "run_reporters"),
            ("FinalReporters", "final_reporters"),
        ] {
            let list = reporting
                .and_then(|r| get(r, from))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            total += list.len();
            let mut native = Vec::new();
            for (i, reporter) in list.iter().enumerate() {
                let path = format!("Reporting.{from}[{i}]");
                let Some(reporter) = reporter.as_object() else {
                    self.problem(path, "expected {\"Name\": ..., \"Parameters\": ...}");
                    continue;
                };
                let name = get(reporter, "Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let params = get(reporter, "Parameters").and_then(Value::as_object);
                match name.trim().to_ascii_lowercase().as_str() {
                    "" => self.problem(
                        format!("{path}.Name"),
                        format!(
                            "invalid empty or all-whitespace {} reporter name",
                            if to == "run_reporters" {
                                "run"
                            } else {
                                "final"
                            }
                        ),
                    ),
                    "noop" => native.push(json!("noop")),
                    "targetsuccess" => {
                        let key = if to == "run_reporters" {
                            "SuccessExpression"
                        } else {
                            "AverageSuccessExpression"
                        };
                        match params.and_then(|p| get(p, key)).and_then(Value::as_str) {
                            Some(expr) => native.push(json!({ "target_success": expr })),
                            None => self.problem(
                                format!("{path}.Parameters.{key}"),
                                "give the success expression, e.g. \">80%\"",
                            ),
                        }
                    }
                    other => self.problem(
                        format!("{path}.Name"),
                        format!("reporter {other:?} is not supported; use TargetSuccess or noop"),
                    ),
                }
            }
            out.insert(to.into(), Value::Array(native));
        }
        if total == 0 {
            self.problem("Reporting", "give at least one run or final reporter");
        }
        Value::Object(out)
    }
}

/// ConTest's identifier rule for labels: `[a-zA-Z]\w*`.
fn is_label(label: &str) -> bool {
    let mut chars = label.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// ConTest accepts `true` and `"true"` for boolean parameters.
fn boolean(value: Value) -> Value {
    match &value {
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" => json!(true),
            "false" => json!(false),
            _ => value,
        },
        _ => value,
    }
}

/// Translates a ConTest descriptor to the native form, fetching test steps from files
/// `files` lets it read.
pub(crate) fn to_native(
    value: &Value,
    files: &Access,
    registry: &Registry,
) -> Result<Value, Untranslated> {
    let mut translator = Translator {
        files,
        registry,
        problems: Vec::new(),
        refused: Vec::new(),
    };
    let Some(top) = value.as_object() else {
        return Err(Untranslated::Invalid(vec![Problem::new(
            "",
            "a ConTest descriptor is a JSON object",
        )]));
    };
    let native = translator.job(top);
    if !translator.refused.is_empty() {
        Err(Untranslated::Refused(translator.refused))
    } else if translator.problems.is_empty() {
        Ok(native)
    } else {
        Err(Untranslated::Invalid(translator.problems))
    }
}

/// Why a ConTest descriptor was not translated.
#[derive(Debug)]
pub(crate) enum Untranslated {
    /// It is invalid.
    Invalid(Vec<Problem>),
    /// It names files the job may not read.
    Refused(Vec<Problem>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_contest() {
        assert!(is_label("Step1") && is_label("a_b2"));
        assert!(!is_label("some label") && !is_label("1st") && !is_label("") && !is_label("a-b"));
    }

    #[test]
    fn keys_match_whatever_their_case() {
        let value = json!({"jobname": "j", "TESTDESCRIPTORS": [{
            "targetmanagername": "targetlist",
            "TargetManagerAcquireParameters": {"targets": [{"id": "1", "FQDN": "h"}]},
            "TestFetcherName": "Literal",
            "TestFetcherFetchParameters": {"testname": "t", "steps": [
                {"Name": "Echo", "Label": "e", "Parameters": {"text": ["hi {{ .ID }}"]}}
            ]}
        }], "reporting": {"runreporters": [{"name": "Noop"}]}});
        assert!(is_contest(&value));
        let registry = Registry::new().with(crate::steps::Echo);
        let native = to_native(&value, &Access::local(), &registry).unwrap();
        assert_eq!(
            native["tests"][0]["steps"][0],
            json!({"name": "e", "echo": {"text": "hi {{ .ID }}"}})
        );
        assert_eq!(native["tests"][0]["targets"]["list"][0]["fqdn"], "h");
        assert_eq!(native["reporting"]["run_reporters"], json!(["noop"]));
    }
}
