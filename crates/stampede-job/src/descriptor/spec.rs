//! The native job descriptor as written in a file: one struct per part, every field
//! documented. These structs are what `stampede schema` prints as JSON Schema.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use stampede_api::job::Target;

use crate::duration;
use crate::duration::DurationText;

/// A job: tests run in order, `runs` times, with reporters giving the verdict.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// `major.minor`, currently "1.0"; another major is refused. Absent means current.
    /// (Checked on the document before it is decoded, so a newer file says so first.)
    #[serde(default)]
    #[allow(dead_code)]
    #[schemars(with = "Option<String>")]
    pub version: Option<serde_json::Value>,
    /// The job's name (at most 64 characters).
    pub name: String,
    /// Tags to find the job by: letters, digits, `_` and `-`; no duplicates; a leading `_`
    /// is reserved for the server.
    #[serde(default)]
    pub tags: Vec<String>,
    /// How many times to run all tests; 0 runs until cancelled (default 1).
    #[serde(default)]
    pub runs: Option<u32>,
    /// How long to wait between runs (default none).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub run_interval: Option<Duration>,
    /// The tests, run one after the other in every run.
    pub tests: Vec<TestSpec>,
    /// Who gives the verdict (default: `target_success: "=100%"` and `thresholds`).
    #[serde(default)]
    pub reporting: Option<ReportingSpec>,
    /// Where `stampede cloud run` sends this job (the descriptor's layer of the client's
    /// configuration: flags and `STAMPEDE_*` variables override it, it overrides the
    /// config file).
    #[serde(default)]
    pub cloud: Option<CloudOptions>,
}

/// The job server to use for this job.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudOptions {
    /// The server's URL, e.g. `http://127.0.0.1:6565`.
    #[serde(default)]
    pub server: Option<String>,
    /// How long one request may take (default 30s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Duration>,
}

/// A test: targets, and a pipeline of steps every target goes through on its own.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// The test's name (at most 32 characters, unique in the job).
    pub name: String,
    /// Skip this test (it is still checked).
    #[serde(default)]
    pub disabled: bool,
    /// Where the targets come from (default: one target `local` on `localhost`).
    #[serde(default)]
    pub targets: Option<TargetsSpec>,
    /// How long acquiring the targets may take before the job fails (default 5m).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub acquire_timeout: Option<Duration>,
    /// How long releasing the targets may take before the job fails (default 5m).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub release_timeout: Option<Duration>,
    /// Run the test again when a target failed.
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
    /// The steps, in pipeline order.
    pub steps: Vec<StepEntry>,
}

/// Where a test's targets come from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetsSpec {
    /// These targets.
    List(Vec<Target>),
    /// Hosts from a CSV file of `id,fqdn,ipv4,ipv6` rows (ConTest's CSVFileTargetManager).
    Csv(CsvTargets),
    /// `count` generated targets, `PREFIX-1` ... `PREFIX-N`.
    Synthetic(SyntheticTargets),
}

/// Hosts from a CSV file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvTargets {
    /// The file: a path (relative to the job file) or a `file://` URI.
    pub file: String,
    /// Fail when fewer hosts are available (default 1).
    #[serde(default)]
    pub min: Option<usize>,
    /// Take at most this many hosts (default all).
    #[serde(default)]
    pub max: Option<usize>,
    /// Keep only hosts whose name's first label starts with one of these.
    #[serde(default)]
    pub host_prefixes: Vec<String>,
    /// Pick the hosts in random order.
    #[serde(default)]
    pub shuffle: bool,
}

/// Generated targets, for load and scale tests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticTargets {
    /// How many (at least 1).
    pub count: u32,
    /// Their ids are `PREFIX-1` ... (default `target`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Their host (default `127.0.0.1`).
    #[serde(default)]
    pub host: Option<String>,
    /// Their URL, if any.
    #[serde(default)]
    pub url: Option<String>,
}

/// Retries of a test.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetriesSpec {
    /// How many more attempts after a failed one.
    pub count: u32,
    /// How long to wait before each retry (default none).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub interval: Option<Duration>,
}

/// One step: a label and exactly one kind of step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct StepEntry {
    /// The step's label, unique in its test (at most 32 characters).
    pub name: String,
    /// Skip this step: targets pass through it.
    #[serde(default)]
    pub disabled: bool,
    /// Fail a target that is still in this step after this long (the step is stopped as a
    /// cancel stops it).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Duration>,
    /// The step's kind, a registered key (`load`, `exec`, ...), and its config: exactly
    /// one. The registry decodes and documents these (see `crate::schema`).
    #[serde(flatten)]
    #[schemars(skip)]
    pub kinds: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The reporters.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportingSpec {
    /// Judge each run.
    #[serde(default)]
    pub run_reporters: Vec<ReporterSpec>,
    /// Judge the whole job, after the last run.
    #[serde(default)]
    pub final_reporters: Vec<ReporterSpec>,
}

/// A reporter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ReporterSpec {
    /// Passes when enough targets passed every step: `>=80%`, `=100%`, `>3` (ConTest's
    /// TargetSuccess expression).
    TargetSuccess(String),
    /// Passes when every load step's thresholds held.
    Thresholds,
    /// Writes a JUnit XML file per run: one testcase per target per step.
    Junit(FileReporter),
    /// Writes the run's status as JSON, one file per run.
    Json(FileReporter),
    /// Always passes.
    Noop,
}

impl ReporterSpec {
    /// The files the reporter writes (see [`Step::uses`](crate::Step::uses)).
    pub fn uses(&self) -> Vec<crate::step::Use> {
        match self {
            ReporterSpec::Junit(file) => vec![crate::step::Use::write("junit.path", &file.path)],
            ReporterSpec::Json(file) => vec![crate::step::Use::write("json.path", &file.path)],
            ReporterSpec::TargetSuccess(_) | ReporterSpec::Thresholds | ReporterSpec::Noop => {
                Vec::new()
            }
        }
    }

    /// What the reporter needs from the machine.
    pub fn needs(&self) -> Vec<crate::step::Capability> {
        match self {
            ReporterSpec::Junit(_) | ReporterSpec::Json(_) => {
                vec![crate::step::Capability::WriteFiles]
            }
            ReporterSpec::TargetSuccess(_) | ReporterSpec::Thresholds | ReporterSpec::Noop => {
                Vec::new()
            }
        }
    }
}

/// Where a file reporter writes.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReporter {
    /// The file; with more than one run, `-runN` goes before its extension.
    pub path: String,
}
