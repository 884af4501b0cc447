//! Job descriptors: the native format (YAML or JSON) and ConTest v1.0 descriptors, read into
//! one validated [`Job`].
//!
//! ```yaml
//! version: "1.0"
//! name: checkout
//! tags: [nightly]
//! runs: 2
//! run_interval: 10s
//! tests:
//!   - name: api
//!     targets: { synthetic: { count: 3, url: "http://127.0.0.1:8080" } }
//!     steps:
//!       - name: probe
//!         http: { url: "{{ target.url }}/" }
//!       - name: warm-up
//!         load: { url: "{{ target.url }}/", rate: 100, duration: 10s }
//! reporting:
//!   run_reporters: [{ target_success: ">=80%" }, thresholds]
//! ```
//!
//! Reading goes: text → JSON value (YAML errors carry line and column) → a ConTest
//! descriptor is translated to the native form ([`contest`]) → the value is decoded piece by
//! piece, so that one bad step does not hide another → every rule is checked. All problems
//! come back at once, each with its path in the file (and, for YAML, line and column). The
//! native JSON value is kept as the job's extended descriptor: what the store keeps and a
//! resumed job is rebuilt from, with no re-fetching.

pub(crate) mod contest;
mod entry;
mod locate;
pub(crate) mod spec;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use stampede_api::job::Target;
use thiserror::Error;

use crate::access::Access;
use crate::registry::{Registry, StepPlugin, decode};
use crate::step::{Capability, Problem, Use};
use spec::{JobSpec, ReporterSpec, TargetsSpec, TestSpec};

pub(crate) use spec::FileReporter;
pub use spec::{CsvTargets, SyntheticTargets};

/// The descriptor version this build writes and reads (`major.minor`).
pub const CURRENT_VERSION: &str = "1.0";
/// The longest job name.
const MAX_JOB_NAME: usize = 64;
/// The longest test name, step label, tag or reporter name.
const MAX_NAME: usize = 32;
/// ConTest's default acquire and release timeouts.
const DEFAULT_TARGET_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Why a descriptor cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The YAML or JSON does not parse.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file's major version is not this build's.
    #[error(
        "{path}: version {found} is not supported: this stampede reads version {CURRENT_VERSION} (major 1); convert the file or use a matching stampede"
    )]
    Version {
        /// The file.
        path: String,
        /// The version in the file.
        found: String,
    },
    /// It names files the job may not read where it is read (a job server's policy).
    #[error("{path}: refused: {}", problems.join("; "))]
    Refused {
        /// The file.
        path: String,
        /// `tests[0].TestFetcherParameters.URI: /etc/passwd: ... (needs the grant ...)`.
        problems: Vec<String>,
    },
    /// Problems found, each with its path in the file.
    #[error("{path}: {} problem{}:\n  {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("\n  "))]
    Invalid {
        /// The file.
        path: String,
        /// `tests[0].steps[1].load.rate: must be positive (line 7, column 9)`, ...
        problems: Vec<String>,
    },
}

/// A validated job, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Runs; 0 runs until cancelled.
    pub runs: u32,
    /// The wait between runs.
    pub run_interval: Duration,
    /// The tests, in order.
    pub tests: Vec<Test>,
    /// Reporters judging each run.
    pub run_reporters: Vec<ReporterSpec>,
    /// Reporters judging the job.
    pub final_reporters: Vec<ReporterSpec>,
    /// The native descriptor as JSON: what the store keeps and a resume starts from.
    pub extended: Value,
    /// Where `stampede cloud run` sends it, if the descriptor says.
    pub cloud: Option<spec::CloudOptions>,
    /// The files, hosts and processes it may use when it runs: everything on the user's
    /// own machine; a server confines it (see [`Access`]).
    pub access: Access,
}

/// A test of a [`Job`].
#[derive(Debug, Clone)]
pub struct Test {
    /// Its name.
    pub name: String,
    /// Skipped when set.
    pub disabled: bool,
    /// Where its targets come from.
    pub targets: Targets,
    /// How long acquiring may take.
    pub acquire_timeout: Duration,
    /// How long releasing may take.
    pub release_timeout: Duration,
    /// More attempts after a failed one.
    pub retries: u32,
    /// The wait before a retry.
    pub retry_interval: Duration,
    /// The pipeline.
    pub steps: Vec<TestStep>,
}

/// Where a test's targets come from, resolved (a CSV file's path is absolute).
#[derive(Debug, Clone)]
pub enum Targets {
    /// These.
    List(Vec<Target>),
    /// Hosts from a CSV file.
    Csv(CsvTargets),
    /// Generated.
    Synthetic(SyntheticTargets),
}

impl Targets {
    /// The files acquiring these targets reads (see [`Step::uses`](crate::Step::uses)).
    pub fn uses(&self) -> Vec<Use> {
        match self {
            Targets::Csv(csv) => vec![Use::read("csv.file", csv.file.clone())],
            Targets::List(_) | Targets::Synthetic(_) => Vec::new(),
        }
    }

    /// What acquiring these targets needs from the machine.
    pub fn needs(&self) -> Vec<Capability> {
        match self {
            Targets::Csv(_) => vec![Capability::ReadFiles],
            Targets::List(_) | Targets::Synthetic(_) => Vec::new(),
        }
    }
}

/// A step of a [`Test`] (ConTest's TestStep).
#[derive(Debug, Clone)]
pub struct TestStep {
    /// Its label.
    pub label: String,
    /// Targets pass through when set.
    pub disabled: bool,
    /// A target still in the step after this long fails.
    pub timeout: Option<Duration>,
    /// Which plugin runs it.
    pub plugin: StepPlugin,
    /// The plugin's config as written (templates unrendered).
    pub config: Value,
}

impl Job {
    /// Reads a native or ConTest descriptor whose steps are `registry`'s. `path` names it in
    /// messages; relative files (CSV targets, ConTest's URI test fetcher) are found from
    /// `base_dir`. The job may use anything when it runs ([`Access::local`]).
    pub fn parse(
        text: &str,
        path: &str,
        base_dir: &Path,
        registry: &Registry,
    ) -> Result<Job, DescriptorError> {
        Job::parse_in(text, path, &Access::local_at(base_dir), registry)
    }

    /// [`parse`](Job::parse), reading only the files `files` lets it: a job server's,
    /// with [`Access::confined`]. A confined job keeps its access (give it its directory
    /// before it runs); relative CSV paths then resolve when it runs.
    pub fn parse_in(
        text: &str,
        path: &str,
        files: &Access,
        registry: &Registry,
    ) -> Result<Job, DescriptorError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| DescriptorError::Syntax {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let located = |problems: Vec<Problem>| DescriptorError::Invalid {
            path: path.to_string(),
            problems: locate::describe(text, &problems),
        };
        let value = if contest::is_contest(&value) {
            contest::to_native(&value, files, registry).map_err(|untranslated| {
                let listed = |problems: Vec<Problem>| -> Vec<String> {
                    let told = problems
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message));
                    told.collect()
                };
                let path = path.to_string();
                match untranslated {
                    contest::Untranslated::Invalid(problems) => DescriptorError::Invalid {
                        path,
                        problems: listed(problems),
                    },
                    contest::Untranslated::Refused(problems) => DescriptorError::Refused {
                        path,
                        problems: listed(problems),
                    },
                }
            })?
        } else {
            value
        };
        check_version(&value, path)?;
        decode_and_build(value, files, registry).map_err(located)
    }

    /// What running this job needs from the machine: what its steps, target sources and
    /// reporters declare (a server decides per project what it allows).
    pub fn needs(&self) -> BTreeSet<Capability> {
        let steps = self
            .tests
            .iter()
            .flat_map(|t| &t.steps)
            .filter(|s| !s.disabled)
            .flat_map(|s| s.plugin.needs().iter().copied());
        let targets = self.tests.iter().flat_map(|t| t.targets.needs());
        let reporters = self
            .run_reporters
            .iter()
            .chain(&self.final_reporters)
            .flat_map(ReporterSpec::needs);
        steps.chain(targets).chain(reporters).collect()
    }

    /// Rebuilds a job from its extended descriptor (as stored).
    pub fn from_extended(extended: &str, registry: &Registry) -> Result<Job, DescriptorError> {
        let value: Value = serde_json::from_str(extended).map_err(|e| DescriptorError::Syntax {
            path: "the stored descriptor".into(),
            message: e.to_string(),
        })?;
        let invalid = |problems: Vec<Problem>| DescriptorError::Invalid {
            path: "the stored descriptor".into(),
            problems: problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        };
        decode_and_build(value, &Access::local(), registry).map_err(invalid)
    }
}

fn check_version(value: &Value, path: &str) -> Result<(), DescriptorError> {
    let Some(version) = value.get("version") else {
        return Ok(());
    };
    let text = match version {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let s = n.to_string();
            if s.contains('.') { s } else { format!("{s}.0") }
        }
        other => other.to_string(),
    };
    let mut parts = text.split('.');
    let major = parts.next().and_then(|m| m.trim().parse::<u32>().ok());
    let minor = parts.next().and_then(|m| m.trim().parse::<u32>().ok());
    let well_formed = major.is_some() && minor.is_some() && parts.next().is_none();
    if !well_formed {
        return Err(DescriptorError::Invalid {
            path: path.into(),
            problems: vec![format!(
                "version: {text:?} is not major.minor; write \"{CURRENT_VERSION}\""
            )],
        });
    }
    if major != Some(1) || minor > Some(0) {
        return Err(DescriptorError::Version {
            path: path.into(),
            found: format!("{text:?}"),
        });
    }
    Ok(())
}

/// What decoding piece by piece found.
struct Decoded {
    /// The job, with every step or reporter that did not decode replaced by a stand-in.
    spec: JobSpec,
    /// The document the spec was decoded from (the stand-ins included).
    value: Value,
    /// The structural problems.
    problems: Vec<Problem>,
    /// Paths of the stand-ins: their own checks would only repeat the problem.
    replaced: Vec<String>,
}

impl Decoded {
    /// Whether `problem` is about a stand-in.
    fn about_a_stand_in(&self, problem: &Problem) -> bool {
        self.replaced.iter().any(|prefix| {
            problem
                .path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
                })
        })
    }
}

/// Decodes the job test by test and step by step, so every structural problem is found; a
/// step or reporter that does not decode is replaced by a stand-in so that the rules can
/// still be checked on everything else. A test or the job itself that does not decode
/// stops there.
fn decode_pieces(value: &Value, registry: &Registry) -> Result<Decoded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut replaced = Vec::new();
    let mut repaired = value.clone();
    if let Value::Object(top) = value {
        let mut shell = top.clone();
        if let Some(Value::Array(tests)) = top.get("tests") {
            let mut hollow = Vec::new();
            for (t, test) in tests.iter().enumerate() {
                let mut test = test.clone();
                if let Some(Value::Array(steps)) = test.get("steps").cloned() {
                    for (s, step) in steps.iter().enumerate() {
                        let at = format!("tests[{t}].steps[{s}]");
                        if let Err(p) = entry::check(step, &at, registry) {
                            problems.push(p);
                            let name = step.get("name").cloned().unwrap_or(Value::Null);
                            let name = if name.is_string() {
                                name
                            } else {
                                Value::String(format!("step {s}"))
                            };
                            repaired["tests"][t]["steps"][s] = serde_json::json!({"name": name});
                            replaced.push(at);
                        }
                    }
                    test["steps"] = Value::Array(Vec::new());
                }
                if let Err(p) = decode::<TestSpec>(&test, &format!("tests[{t}]")) {
                    problems.push(p);
                }
                hollow.push(test);
            }
            shell.insert("tests".into(), Value::Array(hollow));
        }
        if let Some(Value::Object(reporting)) = top.get("reporting") {
            let mut hollow = reporting.clone();
            for key in ["run_reporters", "final_reporters"] {
                if let Some(Value::Array(list)) = reporting.get(key) {
                    for (i, reporter) in list.iter().enumerate() {
                        let at = format!("reporting.{key}[{i}]");
                        if let Err(p) = decode::<ReporterSpec>(reporter, &at) {
                            problems.push(p);
                            repaired["reporting"][key][i] = Value::String("noop".into());
                            replaced.push(at);
                        }
                    }
                    hollow.insert(key.into(), Value::Array(Vec::new()));
                }
            }
            shell.insert("reporting".into(), Value::Object(hollow));
        }
        if let Err(p) = decode::<JobSpec>(&Value::Object(shell), "") {
            problems.push(p);
        }
    }
    if problems.len() > replaced.len() {
        // A test or the job did not decode: nothing more can be checked.
        return Err(problems);
    }
    let spec = decode::<JobSpec>(&repaired, "").map_err(|p| {
        let mut all = problems.clone();
        all.push(p);
        all
    })?;
    Ok(Decoded {
        spec,
        value: repaired,
        problems,
        replaced,
    })
}

/// Decodes and checks a job: every problem, structural or not, at once.
fn decode_and_build(
    value: Value,
    files: &Access,
    registry: &Registry,
) -> Result<Job, Vec<Problem>> {
    let decoded = decode_pieces(&value, registry)?;
    if decoded.problems.is_empty() {
        return build(decoded.spec, value, files, registry);
    }
    let mut problems = decoded.problems.clone();
    if let Err(more) = build(decoded.spec.clone(), decoded.value.clone(), files, registry) {
        problems.extend(more.into_iter().filter(|p| !decoded.about_a_stand_in(p)));
    }
    Err(problems)
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// ConTest's tag rules; `_` tags are the server's.
pub(crate) fn tag_problems(tags: &[String], path: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if tag.is_empty() {
            problems.push(Problem::new(at, "a tag cannot be empty"));
        } else if !tag.chars().all(is_identifier_char) {
            problems.push(Problem::new(
                at,
                format!("tag {tag:?} may hold only letters, digits, '_' and '-'"),
            ));
        } else if tag.starts_with('_') {
            problems.push(Problem::new(at, format!("tag {tag:?} starts with '_': such tags are internal and only the server may set them")));
        } else if tag.len() > MAX_NAME {
            problems.push(Problem::new(
                at,
                format!("tag {tag:?} is longer than {MAX_NAME} characters"),
            ));
        } else if tags[..i].contains(tag) {
            problems.push(Problem::new(at, format!("tag {tag:?} is given twice")));
        }
    }
    problems
}

fn name_problems(name: &str, path: &str, what: &str, max: usize) -> Option<Problem> {
    if name.trim().is_empty() {
        Some(Problem::new(path, format!("give the {what} a name")))
    } else if name.chars().count() > max {
        Some(Problem::new(
            path,
            format!("{what} name {name:?} is longer than {max} characters"),
        ))
    } else {
        None
    }
}

fn build(
    spec: JobSpec,
    mut extended: Value,
    files: &Access,
    registry: &Registry,
) -> Result<Job, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(p) = name_problems(&spec.name, "name", "job", MAX_JOB_NAME) {
        problems.push(p);
    }
    problems.extend(tag_problems(&spec.tags, "tags"));
    if spec.tests.is_empty() {
        problems.push(Problem::new("tests", "give at least one test"));
    }
    let mut tests = Vec::new();
    for (t, test) in spec.tests.into_iter().enumerate() {
        let at = format!("tests[{t}]");
        if let Some(p) = name_problems(&test.name, &format!("{at}.name"), "test", MAX_NAME) {
            problems.push(p);
        }
        if tests.iter().any(|other: &Test| other.name == test.name) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("test {:?} is given twice", test.name),
            ));
        }
        if test.steps.is_empty() {
            problems.push(Problem::new(
                format!("{at}.steps"),
                "give at least one step",
            ));
        }
        let targets = match test.targets {
            None => Targets::List(vec![Target {
                id: "local".into(),
                host: "localhost".into(),
                ..Target::default()
            }]),
            Some(TargetsSpec::List(list)) => {
                if list.is_empty() {
                    problems.push(Problem::new(
                        format!("{at}.targets.list"),
                        "give at least one target",
                    ));
                }
                for (i, target) in list.iter().enumerate() {
                    if target.id.trim().is_empty() {
                        problems.push(Problem::new(
                            format!("{at}.targets.list[{i}].id"),
                            "a target needs an id",
                        ));
                    } else if list[..i].iter().any(|o| o.id == target.id) {
                        problems.push(Problem::new(
                            format!("{at}.targets.list[{i}].id"),
                            format!("target {:?} is given twice", target.id),
                        ));
                    }
                }
                Targets::List(list)
            }
            Some(TargetsSpec::Csv(mut csv)) => {
                let file = csv
                    .file
                    .strip_prefix("file://")
                    .unwrap_or(&csv.file)
                    .to_string();
                // On the user's machine the stored descriptor keeps the resolved path (a
                // resumed job may run from another directory); a server's job resolves it
                // in its own directory when it runs.
                csv.file = if files.is_confined() {
                    file
                } else {
                    files.path(&file).map_or(file, |p| p.display().to_string())
                };
                extended["tests"][t]["targets"]["csv"]["file"] = Value::String(csv.file.clone());
                if let (Some(min), Some(max)) = (csv.min, csv.max)
                    && min > max
                {
                    problems.push(Problem::new(
                        format!("{at}.targets.csv.min"),
                        format!("min ({min}) is more than max ({max})"),
                    ));
                }
                if csv.max == Some(0) {
                    problems.push(Problem::new(
                        format!("{at}.targets.csv.max"),
                        "must be at least 1",
                    ));
                }
                Targets::Csv(csv)
            }
            Some(TargetsSpec::Synthetic(synthetic)) => {
                if synthetic.count == 0 {
                    problems.push(Problem::new(
                        format!("{at}.targets.synthetic.count"),
                        "must be at least 1",
                    ));
                }
                Targets::Synthetic(synthetic)
            }
        };
        let mut steps = Vec::new();
        // Every label, also of steps that are not kept because of a problem.
        let mut labels: Vec<String> = Vec::new();
        for (s, entry) in test.steps.into_iter().enumerate() {
            let at = format!("{at}.steps[{s}]");
            if let Some(p) = name_problems(&entry.name, &format!("{at}.name"), "step", MAX_NAME) {
                problems.push(p);
            }
            if labels.contains(&entry.name) {
                problems.push(Problem::new(
                    format!("{at}.name"),
                    format!("step {:?} is given twice in this test", entry.name),
                ));
            }
            labels.push(entry.name.clone());
            let plugins: Vec<&StepPlugin> = registry
                .steps()
                .iter()
                .filter(|p| entry.kinds.contains_key(p.key()))
                .collect();
            let &[plugin] = plugins.as_slice() else {
                let message = if plugins.is_empty() {
                    format!(
                        "say what the step does with one of: {}",
                        registry.keys().join(", ")
                    )
                } else {
                    let given: Vec<_> = plugins.iter().map(|p| p.key()).collect();
                    format!("give one kind of step, not {}", given.join(" and "))
                };
                problems.push(Problem::new(at, message));
                continue;
            };
            let key = plugin.key();
            let config = extended["tests"][t]["steps"][s][key].clone();
            problems.extend(plugin.problems(&config, &format!("{at}.{key}")));
            steps.push(TestStep {
                label: entry.name,
                disabled: entry.disabled,
                timeout: entry.timeout,
                plugin: plugin.clone(),
                config,
            });
        }
        let (retries, retry_interval) = test
            .retries
            .map(|r| (r.count, r.interval.unwrap_or_default()))
            .unwrap_or_default();
        tests.push(Test {
            name: test.name,
            disabled: test.disabled,
            targets,
            acquire_timeout: test.acquire_timeout.unwrap_or(DEFAULT_TARGET_TIMEOUT),
            release_timeout: test.release_timeout.unwrap_or(DEFAULT_TARGET_TIMEOUT),
            retries,
            retry_interval,
            steps,
        });
    }
    let reporting = spec.reporting.unwrap_or_else(|| spec::ReportingSpec {
        run_reporters: vec![
            ReporterSpec::TargetSuccess("=100%".into()),
            ReporterSpec::Thresholds,
        ],
        final_reporters: Vec::new(),
    });
    for (key, list) in [
        ("run_reporters", &reporting.run_reporters),
        ("final_reporters", &reporting.final_reporters),
    ] {
        for (i, reporter) in list.iter().enumerate() {
            if let ReporterSpec::TargetSuccess(expr) = reporter
                && let Err(e) = crate::comparison::Expression::parse(expr)
            {
                problems.push(Problem::new(
                    format!("reporting.{key}[{i}].target_success"),
                    e,
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(Job {
            name: spec.name,
            tags: spec.tags,
            runs: spec.runs.unwrap_or(1),
            run_interval: spec.run_interval.unwrap_or_default(),
            tests,
            run_reporters: reporting.run_reporters,
            final_reporters: reporting.final_reporters,
            extended,
            cloud: spec.cloud,
            access: if files.is_confined() {
                files.clone()
            } else {
                Access::local()
            },
        })
    } else {
        Err(problems)
    }
}
