//! The `scale` step's config as written in a job file: one struct per part, every field
//! documented (this is the JSON Schema and the user documentation), decoded once with
//! `deny_unknown_fields`. [`ScaleConfig::problems`] checks what serde cannot: one kind per
//! phase, saved values read only after a phase saved them, known streams and marks, no
//! barrier in a cleanup, and templates and JSON paths that parse.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::jsonpath::JsonPath;
use stampede_job::DurationText;
use stampede_job::Problem;
use stampede_job::duration;
use stampede_job::template::Template;

/// The formats of `output`.
pub(crate) const OUTPUT_FORMATS: [&str; 4] = ["text", "json", "harness-text", "harness-json"];

/// N runners walking a declared lifecycle of phases, coder's scale-test harness: runs
/// `<test>/<id>`, barriers, update streams fanned out per runner, named latencies between
/// marks with p50 / p95 / p99 over the successful runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleConfig {
    /// How many runners (at least 1). Runner ids are `0` .. `runners - 1`.
    pub runners: u32,
    /// The test name in run ids `<test>/<id>` (default: the step's label).
    #[serde(default)]
    pub test_name: Option<String>,
    /// How many runs go at once: 0 all (the default, and the only choice with a barrier:
    /// every runner must be able to reach it), 1 one after the other, N at most N.
    #[serde(default)]
    pub concurrency: usize,
    /// Start the runs in a random order; with `seed`, the same order every time.
    #[serde(default)]
    pub shuffle: bool,
    /// The seed of `shuffle`'s order.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Each run's deadline, from its start (default 5m, coder's `--job-timeout`).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub run_timeout: Option<Duration>,
    /// Each phase's deadline unless the phase sets its own (default: none but the run's).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub phase_timeout: Option<Duration>,
    /// Phases run once, before any runner (`http` and `mark` only); what they save every
    /// runner, stream and cleanup can read.
    #[serde(default)]
    pub setup: Vec<Phase>,
    /// Update streams by name, each opened once before the runs and fanned out per runner.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamSpec>,
    /// What every runner does, in order.
    pub phases: Vec<Phase>,
    /// What every runner that started does after all runs ended (no barriers, no stream
    /// waits).
    #[serde(default)]
    pub cleanup: Vec<Phase>,
    /// Skip the cleanup phases.
    #[serde(default)]
    pub no_cleanup: bool,
    /// How many cleanups go at once: 0 all, 1 one after the other (default), N at most N.
    #[serde(default)]
    pub cleanup_concurrency: Option<usize>,
    /// Each cleanup's deadline, from its start (default 5m, coder's
    /// `--cleanup-job-timeout`).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub cleanup_timeout: Option<Duration>,
    /// The deadline of all cleanups together, from the first one's start (default 30m,
    /// coder's `--cleanup-timeout`). Cleanups still waiting or running when it passes are
    /// abandoned and reported as failed: what they remove is left.
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub cleanup_deadline: Option<Duration>,
    /// Named latencies between two marks, reported in this order.
    #[serde(default)]
    pub latencies: Vec<LatencySpec>,
    /// How the results are titled.
    #[serde(default)]
    pub report: ReportSpec,
    /// Reports to write besides the `ScaleResults` event, coder's `--output`: `text:PATH`
    /// (the text report), `json:PATH` (coder's JSON: `<name>_p50_ms`... per latency),
    /// `harness-text:PATH` or `harness-json:PATH` (the harness's results, every run with
    /// its log).
    #[serde(default)]
    pub output: Vec<String>,
}

/// One phase: a name and exactly one kind.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Its name in logs and errors (default: its kind).
    #[serde(default)]
    pub name: Option<String>,
    /// Its deadline (default: `phase_timeout`).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Duration>,
    /// Send one HTTP request.
    #[serde(default)]
    pub http: Option<HttpPhase>,
    /// Wait until a condition holds, polling a URL or reading a stream.
    #[serde(default)]
    pub wait: Option<WaitPhase>,
    /// Wait until every runner of the step arrived at the barrier of this name (a runner
    /// that failed earlier counts as arrived).
    #[serde(default)]
    pub barrier: Option<String>,
    /// Record a time under a name, now or later.
    #[serde(default)]
    pub mark: Option<MarkPhase>,
}

/// The kinds of phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhaseKind {
    Http,
    Wait,
    Barrier,
    Mark,
}

impl PhaseKind {
    pub(crate) fn key(self) -> &'static str {
        match self {
            PhaseKind::Http => "http",
            PhaseKind::Wait => "wait",
            PhaseKind::Barrier => "barrier",
            PhaseKind::Mark => "mark",
        }
    }
}

impl Phase {
    /// The kinds given (exactly one is valid).
    pub(crate) fn kinds(&self) -> Vec<PhaseKind> {
        [
            (PhaseKind::Http, self.http.is_some()),
            (PhaseKind::Wait, self.wait.is_some()),
            (PhaseKind::Barrier, self.barrier.is_some()),
            (PhaseKind::Mark, self.mark.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, given)| given.then_some(kind))
        .collect()
    }

    /// `phase 3 (wait build)`: how logs and errors name it; `n` counts from 1.
    pub(crate) fn label(&self, what: &str, n: usize) -> String {
        let name = match (&self.name, self.kinds().first()) {
            (Some(name), _) => name.clone(),
            (None, Some(kind)) => kind.key().to_owned(),
            (None, None) => "phase".to_owned(),
        };
        format!("{what} {n} ({name})")
    }
}

/// One HTTP request. Strings are templates: `{{ target.url }}`, `{{ saved.token }}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpPhase {
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Absolute `http://` URL.
    pub url: String,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as JSON (its strings are templates); sets `content-type: application/json`.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Accepted statuses (default 200-299).
    #[serde(default)]
    pub status: Vec<u16>,
    /// Values to save from the JSON answer: `name: "$.path"`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
}

/// Wait until `until` holds for an update (a stream's, or a polled answer's); fail at
/// once when a `fail_if` holds first.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitPhase {
    /// Read this runner's updates from this stream.
    #[serde(default)]
    pub stream: Option<String>,
    /// Or send this request until its answer satisfies `until`.
    #[serde(default)]
    pub poll: Option<HttpPhase>,
    /// Time between polls (default 1s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub interval: Option<Duration>,
    /// Conditions that must all hold: `"$.path": value`, `{not: value}` or `{in: [..]}`.
    pub until: BTreeMap<String, Matcher>,
    /// Conditions that fail the wait at once, checked before `until`.
    #[serde(default)]
    pub fail_if: Vec<FailIf>,
    /// Values to save from the update that satisfied `until`: `name: "$.path"`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
}

/// A condition that fails a wait.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailIf {
    /// Conditions that must all hold, as in `until`.
    pub when: BTreeMap<String, Matcher>,
    /// The error, followed by the update that matched (its first 200 characters and its
    /// size, if longer).
    pub error: String,
}

/// What a value at a JSON path must be. A path that is absent never matches.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Matcher {
    /// Anything but this value.
    Not {
        /// The value it must not be.
        not: serde_json::Value,
    },
    /// One of these values.
    In {
        /// The values it may be.
        #[serde(rename = "in")]
        any: Vec<serde_json::Value>,
    },
    /// This value (scalars compare as text: `201` matches `"201"`).
    Equals(serde_json::Value),
}

/// Record a time under `name`: now, or `delay` from now rounded to `round`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPhase {
    /// The mark's name, for `latencies`.
    pub name: String,
    /// A time this far in the future instead of now.
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub delay: Option<Duration>,
    /// Round the time to the nearest multiple of this (coder's autostart: 1m).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<DurationText>")]
    pub round: Option<Duration>,
    /// The first runner to reach this phase sets the time for every runner (coder's
    /// autostart gives every workspace the same schedule).
    #[serde(default)]
    pub shared: bool,
    /// Save the time as values: `name: rfc3339` (UTC, milliseconds), `cron` (coder's
    /// daily `CRON_TZ=UTC <minute> <hour> * * *`) or `unix_ms`.
    #[serde(default)]
    pub save: BTreeMap<String, TimeFormat>,
}

/// How a mark is saved as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2026-01-02T15:04:05.250Z`.
    Rfc3339,
    /// `CRON_TZ=UTC 4 15 * * *`.
    Cron,
    /// Milliseconds since the epoch.
    UnixMs,
}

/// One stream of updates, e.g. "watch all builds".
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Absolute `http://` URL, opened with GET once before the runs (may read setup values).
    pub url: String,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `sse` (server-sent events, the default) or `ndjson`.
    #[serde(default)]
    pub format: StreamFormat,
    /// SSE only: the event name of updates (others are skipped; default: every event).
    #[serde(default)]
    pub event: Option<String>,
    /// Where an update's key is: a JSON path, e.g. `$.workspace_name`.
    pub key: String,
    /// Each runner's key, a template, e.g. `scaletest-{{ saved.id }}`; updates with other
    /// keys are dropped.
    pub runner_key: String,
    /// Updates buffered per runner (default 16, coder's).
    #[serde(default)]
    pub buffer: Option<usize>,
}

/// A stream's wire format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamFormat {
    /// Server-sent events with JSON data.
    #[default]
    Sse,
    /// Newline-delimited JSON.
    Ndjson,
}

/// A latency: the time from one mark to another.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Its key in the JSON report (`<name>_p50_ms`).
    pub name: String,
    /// The mark it starts at.
    pub from: String,
    /// The mark it ends at.
    pub to: String,
    /// Its heading in the text report (default `<name> (<from> → <to>)`).
    #[serde(default)]
    pub heading: Option<String>,
}

/// Names in the report.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The title (default `Scale Test Results`).
    #[serde(default)]
    pub title: Option<String>,
    /// What a run is about (default `runner`); coder's JSON fields `<entity>_name`.
    #[serde(default)]
    pub entity: Option<String>,
    /// Each run's entity name, a template over `saved.id`, `saved.index` and setup
    /// values (default: the runner's id).
    #[serde(default)]
    pub name: Option<String>,
}

/// Values every runner has before its first phase.
pub(crate) const RUNNER_VALUES: [&str; 2] = ["id", "index"];

impl ScaleConfig {
    /// Every problem the decoder could not see, with its path under `at`.
    pub(crate) fn problems(&self, at: &str) -> Vec<Problem> {
        let mut check = Checker {
            problems: Vec::new(),
            known: BTreeSet::new(),
        };
        if self.runners == 0 {
            check.problem(format!("{at}.runners"), "must be at least 1");
        }
        if self.phases.is_empty() {
            check.problem(format!("{at}.phases"), "give at least one phase");
        }
        for (i, phase) in self.setup.iter().enumerate() {
            let path = format!("{at}.setup[{i}]");
            check.phase(phase, &path, Where::Setup, self);
        }
        let setup_known = check.known.clone();
        for (name, stream) in &self.streams {
            let path = format!("{at}.streams.{name}");
            check.request_templates(&stream.url, &stream.headers, &path);
            check.path(&stream.key, &format!("{path}.key"));
            check.known.extend(RUNNER_VALUES.map(String::from));
            check.template(&stream.runner_key, &format!("{path}.runner_key"));
            check.known.clone_from(&setup_known);
            if stream.format == StreamFormat::Ndjson && stream.event.is_some() {
                check.problem(
                    format!("{path}.event"),
                    "only server-sent events have names",
                );
            }
        }
        check.known.extend(RUNNER_VALUES.map(String::from));
        if let Some(name) = &self.report.name {
            check.template(name, &format!("{at}.report.name"));
        }
        let mut marks = BTreeSet::new();
        let mut barrier = None;
        let mut barriers: BTreeMap<&String, String> = BTreeMap::new();
        for (i, phase) in self.phases.iter().enumerate() {
            let path = format!("{at}.phases[{i}]");
            check.phase(phase, &path, Where::Runner, self);
            if let Some(mark) = &phase.mark {
                marks.insert(mark.name.clone());
            }
            if let Some(name) = &phase.barrier {
                // A runner has one place at each barrier: a second wait would find none.
                if let Some(first) = barriers.get(name) {
                    check.problem(
                        format!("{path}.barrier"),
                        format!(
                            "barrier {name:?} is already waited at by {first}; give each barrier its own name"
                        ),
                    );
                } else {
                    barriers.insert(name, path.clone());
                }
                if barrier.is_none() {
                    barrier = Some(path);
                }
            }
        }
        if let Some(path) = barrier
            && self.concurrency != 0
        {
            check.problem(
                format!("{at}.concurrency"),
                format!(
                    "must be 0 (all runners at once) with a barrier ({path}): runners that \
                     are not started cannot reach it"
                ),
            );
        }
        for (i, phase) in self.cleanup.iter().enumerate() {
            let path = format!("{at}.cleanup[{i}]");
            check.phase(phase, &path, Where::Cleanup, self);
        }
        for (name, limit, what) in [
            ("run_timeout", self.run_timeout, "run"),
            ("phase_timeout", self.phase_timeout, "phase"),
            ("cleanup_timeout", self.cleanup_timeout, "cleanup"),
            ("cleanup_deadline", self.cleanup_deadline, "cleanup"),
        ] {
            check.more_than_0(limit, &format!("{at}.{name}"), what);
        }
        for (i, output) in self.output.iter().enumerate() {
            let known = output
                .split_once(':')
                .is_some_and(|(f, path)| OUTPUT_FORMATS.contains(&f) && !path.is_empty());
            if !known {
                check.problem(
                    format!("{at}.output[{i}]"),
                    format!(
                        "{output:?}: write FORMAT:PATH, FORMAT one of {}",
                        OUTPUT_FORMATS.join(", ")
                    ),
                );
            }
        }
        let mut names = BTreeSet::new();
        for (i, latency) in self.latencies.iter().enumerate() {
            let path = format!("{at}.latencies[{i}]");
            if !names.insert(&latency.name) {
                check.problem(
                    format!("{path}.name"),
                    format!("latency {:?} is given twice", latency.name),
                );
            }
            for (end, mark) in [("from", &latency.from), ("to", &latency.to)] {
                if !marks.contains(mark) {
                    let known = list(marks.iter());
                    check.problem(
                        format!("{path}.{end}"),
                        format!(
                            "no phase marks {mark:?}; marks: {known} (add a phase `mark: {{ name: {mark} }}`)"
                        ),
                    );
                }
            }
        }
        check.problems
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Setup,
    Runner,
    Cleanup,
}

/// Walks phases in order, knowing which saved values exist at each point.
struct Checker {
    problems: Vec<Problem>,
    known: BTreeSet<String>,
}

impl Checker {
    fn problem(&mut self, path: String, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn template(&mut self, text: &str, path: &str) {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => return self.problem(path.to_owned(), e.to_string()),
        };
        for name in template.saved_names() {
            if !self.known.contains(name) {
                let known = list(self.known.iter());
                self.problem(
                    path.to_owned(),
                    format!(
                        "saved value {name:?} is not saved by any earlier phase; saved by then: {known}"
                    ),
                );
            }
        }
    }

    fn path(&mut self, path_text: &str, at: &str) {
        if let Err(e) = JsonPath::parse(path_text) {
            self.problem(at.to_owned(), e);
        }
    }

    fn request_templates(&mut self, url: &str, headers: &BTreeMap<String, String>, at: &str) {
        self.template(url, &format!("{at}.url"));
        for (name, value) in headers {
            self.template(value, &format!("{at}.headers.{name}"));
        }
    }

    fn http(&mut self, http: &HttpPhase, at: &str) {
        self.request_templates(&http.url, &http.headers, at);
        if let Some(body) = &http.body {
            self.template(body, &format!("{at}.body"));
        }
        if http.body.is_some() && http.json.is_some() {
            self.problem(format!("{at}.json"), "give `body` or `json`, not both");
        }
        if let Some(json) = &http.json {
            self.json_templates(json, &format!("{at}.json"));
        }
        self.saves(&http.save, &format!("{at}.save"));
    }

    fn json_templates(&mut self, value: &serde_json::Value, at: &str) {
        match value {
            serde_json::Value::String(s) => self.template(s, at),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json_templates(item, &format!("{at}[{i}]"));
                }
            }
            serde_json::Value::Object(map) => {
                for (key, item) in map {
                    self.json_templates(item, &format!("{at}.{key}"));
                }
            }
            _ => {}
        }
    }

    fn saves(&mut self, save: &BTreeMap<String, String>, at: &str) {
        for (name, path) in save {
            self.path(path, &format!("{at}.{name}"));
        }
        // Known from the next phase on.
        self.known.extend(save.keys().cloned());
    }

    fn conditions(&mut self, conditions: &BTreeMap<String, Matcher>, at: &str) {
        for path in conditions.keys() {
            self.path(path, &format!("{at}.{path}"));
        }
    }

    /// A time limit of 0 would fail every `what` before it sent anything.
    fn more_than_0(&mut self, limit: Option<Duration>, at: &str, what: &str) {
        if limit.is_some_and(|d| d.is_zero()) {
            self.problem(
                at.to_owned(),
                format!(
                    "must be more than 0: every {what} would fail before it sent anything \
                     (leave it out for the default)"
                ),
            );
        }
    }

    fn phase(&mut self, phase: &Phase, at: &str, place: Where, config: &ScaleConfig) {
        self.more_than_0(phase.timeout, &format!("{at}.timeout"), "phase");
        let kinds = phase.kinds();
        let &[kind] = kinds.as_slice() else {
            let message = if kinds.is_empty() {
                "say what the phase does with one of: http, wait, barrier, mark".to_owned()
            } else {
                let given: Vec<_> = kinds.iter().map(|k| k.key()).collect();
                format!("give one kind of phase, not {}", given.join(" and "))
            };
            return self.problem(at.to_owned(), message);
        };
        if place == Where::Setup && !matches!(kind, PhaseKind::Http | PhaseKind::Mark) {
            return self.problem(
                format!("{at}.{}", kind.key()),
                "setup phases run once, before the runners: only http and mark",
            );
        }
        match kind {
            PhaseKind::Http => self.http(phase.http.as_ref().expect("kind"), &format!("{at}.http")),
            PhaseKind::Barrier => {
                if place == Where::Cleanup {
                    self.problem(
                        format!("{at}.barrier"),
                        "a cleanup cannot wait at a barrier: cleanups run only for runners \
                         that started, so the others would never arrive",
                    );
                }
            }
            PhaseKind::Mark => {
                let mark = phase.mark.as_ref().expect("kind");
                if mark.round.is_some_and(|r| r.is_zero()) {
                    self.problem(format!("{at}.mark.round"), "must be more than 0");
                }
                self.known.extend(mark.save.keys().cloned());
            }
            PhaseKind::Wait => {
                let wait = phase.wait.as_ref().expect("kind");
                let at = format!("{at}.wait");
                match (&wait.stream, &wait.poll) {
                    (Some(stream), None) => {
                        if place == Where::Cleanup {
                            self.problem(
                                format!("{at}.stream"),
                                "streams are read during the runs only; poll in a cleanup",
                            );
                        } else if !config.streams.contains_key(stream) {
                            let known = list(config.streams.keys());
                            self.problem(
                                format!("{at}.stream"),
                                format!("no stream is named {stream:?}; streams: {known}"),
                            );
                        }
                    }
                    (None, Some(poll)) => {
                        if wait.interval.is_some_and(|i| i.is_zero()) {
                            self.problem(
                                format!("{at}.interval"),
                                "must be more than 0: every runner would poll without pause",
                            );
                        }
                        self.request_templates(&poll.url, &poll.headers, &format!("{at}.poll"));
                        if let Some(body) = &poll.body {
                            self.template(body, &format!("{at}.poll.body"));
                        }
                        if let Some(json) = &poll.json {
                            self.json_templates(json, &format!("{at}.poll.json"));
                        }
                        for (name, path) in &poll.save {
                            self.path(path, &format!("{at}.poll.save.{name}"));
                        }
                    }
                    _ => self.problem(at.clone(), "wait on one of `stream` or `poll`"),
                }
                self.conditions(&wait.until, &format!("{at}.until"));
                for (i, fail) in wait.fail_if.iter().enumerate() {
                    self.conditions(&fail.when, &format!("{at}.fail_if[{i}].when"));
                }
                if let Some(poll) = &wait.poll {
                    self.known.extend(poll.save.keys().cloned());
                }
                self.saves(&wait.save, &format!("{at}.save"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> stampede_job::Registry {
        stampede_job::Registry::new().with(crate::step::Scale)
    }

    fn problems(yaml: &str) -> Vec<String> {
        let config: ScaleConfig = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        config
            .problems("scale")
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    /// `yaml` has exactly the problems that contain `expected`, in order.
    fn check(yaml: &str, expected: &[&str]) {
        let got = problems(yaml);
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (got, want) in got.iter().zip(expected) {
            assert!(got.contains(want), "{got:?} lacks {want:?}");
        }
    }

    #[test]
    fn the_autostart_examples_have_no_problems() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        for name in ["autostart.yaml", "autostart-fast.yaml"] {
            let text = std::fs::read_to_string(examples.join(name)).unwrap();
            let job = stampede_job::Job::parse(&text, name, &examples, &registry())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(job.tests[0].steps[0].plugin.key(), "scale");
        }
    }

    #[test]
    fn saved_values_are_known_only_after_the_phase_that_saves_them() {
        check(
            r#"
runners: 1
setup:
  - http: { url: "http://h/{{ saved.id }}", save: { owner: "$.token" } }
phases:
  - http: { url: "http://h/{{ saved.owner }}/{{ saved.id }}/{{ saved.token }}", save: { token: "$.t" } }
  - http: { url: "http://h/{{ saved.token }}", headers: { X: "{{ saved.later }}" } }
  - mark: { name: m, save: { later: rfc3339 } }
cleanup:
  - http: { url: "http://h/{{ saved.later }}", json: { a: ["{{ saved.nope }}"] } }
"#,
            &[
                "scale.setup[0].http.url: saved value \"id\" is not saved by any earlier phase; saved by then: none",
                "scale.phases[0].http.url: saved value \"token\"",
                "scale.phases[1].http.headers.X: saved value \"later\"",
                "scale.cleanup[0].http.json.a[0]: saved value \"nope\"",
            ],
        );
    }

    #[test]
    fn streams_barriers_and_marks_must_exist_where_they_are_used() {
        check(
            r#"
runners: 2
concurrency: 4
streams:
  s: { url: "http://h/watch", key: "$.k", runner_key: "k-{{ saved.id }}" }
phases:
  - wait: { stream: t, until: { "$.a": 1 } }
  - wait: { stream: s, until: { "nope": 1 } }
  - wait: { poll: { url: "http://h/" }, interval: 0s, until: { "$.a": 1 } }
  - barrier: b
  - mark: { name: start }
  - barrier: b
cleanup:
  - barrier: b
  - wait: { stream: s, until: { "$.a": 1 } }
latencies:
  - { name: l, from: start, to: end }
  - { name: l, from: start, to: start }
"#,
            &[
                "scale.phases[0].wait.stream: no stream is named \"t\"; streams: s",
                "scale.phases[1].wait.until.nope: JSON path \"nope\": start it with $",
                "scale.phases[2].wait.interval: must be more than 0",
                "scale.phases[5].barrier: barrier \"b\" is already waited at by scale.phases[3]; give each barrier its own name",
                "scale.concurrency: must be 0 (all runners at once) with a barrier (scale.phases[3])",
                "scale.cleanup[0].barrier: a cleanup cannot wait at a barrier",
                "scale.cleanup[1].wait.stream: streams are read during the runs only",
                "scale.latencies[0].to: no phase marks \"end\"; marks: start",
                "scale.latencies[1].name: latency \"l\" is given twice",
            ],
        );
    }

    #[test]
    fn time_limits_must_parse_and_be_more_than_0() {
        let phases = "runners: 1\nphases: [{ mark: { name: m } }]\n";
        check(
            &format!("{phases}cleanup_timeout: 1m\ncleanup_deadline: 2m\n"),
            &[],
        );
        check(
            &format!("{phases}cleanup_timeout: 0s\ncleanup_deadline: 0\n"),
            &[
                "scale.cleanup_timeout: must be more than 0: every cleanup would fail",
                "scale.cleanup_deadline: must be more than 0: every cleanup would fail",
            ],
        );
        check(
            "runners: 1\nphases: [{ mark: { name: m }, timeout: 0s }]\nrun_timeout: 0\n\
             phase_timeout: 0ms\n",
            &[
                "scale.phases[0].timeout: must be more than 0: every phase would fail",
                "scale.run_timeout: must be more than 0: every run would fail",
                "scale.phase_timeout: must be more than 0: every phase would fail",
            ],
        );
        let job = format!(
            "name: j\ntests:\n  - name: t\n    steps:\n      - name: herd\n        scale:\n{}",
            format!("{phases}cleanup_deadline: soon\n")
                .lines()
                .map(|line| format!("          {line}\n"))
                .collect::<String>()
        );
        let error =
            stampede_job::Job::parse(&job, "j.yaml", std::path::Path::new("."), &registry())
                .expect_err("an unreadable deadline")
                .to_string();
        assert!(
            error.contains("tests[0].steps[0].scale.cleanup_deadline: invalid duration \"soon\""),
            "{error}"
        );
    }

    #[test]
    fn phases_need_one_kind_and_setup_only_http_or_mark() {
        check(
            r#"
runners: 0
output: ["json:", "xml:x", "text:r.txt"]
setup:
  - barrier: b
phases:
  - name: nothing
  - http: { url: "http://h/" }
    mark: { name: m }
"#,
            &[
                "scale.runners: must be at least 1",
                "scale.setup[0].barrier: setup phases run once, before the runners",
                "scale.phases[0]: say what the phase does with one of: http, wait, barrier, mark",
                "scale.phases[1]: give one kind of phase, not http and mark",
                "scale.output[0]: \"json:\": write FORMAT:PATH, FORMAT one of text, json, harness-text",
                "scale.output[1]: \"xml:x\": write FORMAT:PATH",
            ],
        );
    }
}
