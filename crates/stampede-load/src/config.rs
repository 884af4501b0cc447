//! The load step's configuration, as written in a job file or built from `quick`'s flags,
//! and its validation into [`LoadSettings`].

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use schemars::JsonSchema;
use serde::Deserialize;
use stampede_engine::{Schedule, Stage};
use stampede_http::{Checks, HttpPlan, RequestSpec};
use stampede_metrics::{Metric, Threshold};

use stampede_job::duration;

/// The default in-flight cap in the open model.
const DEFAULT_MAX_IN_FLIGHT: u64 = 1000;
/// The default number of connections in the open model.
const DEFAULT_OPEN_CONNECTIONS: u64 = 100;
/// k6's default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long calls in flight may finish after the schedule ends.
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);

/// A load step. Give `rate` (open model), `vus` (closed model) or `stages` (ramping rate).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadStep {
    /// The URL to call (shorthand for a one-request `requests` list).
    #[serde(default)]
    pub url: Option<String>,
    /// Requests called in turn, all to one server.
    #[serde(default)]
    pub requests: Vec<RequestConfig>,
    /// Method for `url` (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Headers for `url`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body for `url`.
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses for `url` (default 200-399).
    #[serde(default)]
    pub status: Vec<u16>,
    /// Text the body of `url`'s responses must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Open model: calls per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Closed model: virtual users, each calling again as soon as its call ended.
    #[serde(default)]
    pub vus: Option<u64>,
    /// Closed model: stop after this many calls in total.
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Ramping rate: the rate at the start (default 0).
    #[serde(default)]
    pub start_rate: Option<f64>,
    /// Ramping rate: linear ramps to a target rate.
    #[serde(default)]
    pub stages: Vec<StageConfig>,
    /// How long to schedule calls (not with `stages`, whose durations add up).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub duration: Option<Duration>,
    /// The most calls in flight at once; a tick that finds them all busy is dropped
    /// (default 1000 in the open model).
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    /// Connections to open (default: `vus` in the closed model, 100 in the open model).
    #[serde(default)]
    pub connections: Option<u64>,
    /// Engine threads (default: the CPUs this process may use).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Use HTTP/2 (h2c for http://, ALPN h2 for https://).
    #[serde(default)]
    pub http2: bool,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub insecure: bool,
    /// Pass even when requests fail. By default a step with thresholds on `errors` lets
    /// them decide, and one without fails when any request failed (Locust's default).
    #[serde(default)]
    pub allow_errors: bool,
    /// Per-request timeout (default 60s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub timeout: Option<Duration>,
    /// How long calls in flight may finish after the schedule ends (default 30s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub graceful_stop: Option<Duration>,
    /// k6 thresholds by metric: `latency`, `service_time`, `lag`, `errors`, `requests`,
    /// `dropped`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<ThresholdEntry>>,
}

/// One request of a `requests` list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// Absolute URL.
    pub url: String,
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses (default 200-399).
    #[serde(default)]
    pub status: Vec<u16>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
}

impl RequestConfig {
    /// The request as the HTTP action takes it.
    fn spec(&self) -> RequestSpec {
        RequestSpec {
            url: self.url.clone(),
            method: self.method.clone().unwrap_or_else(|| "GET".into()),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: self.body.clone().map(Bytes::from).unwrap_or_default(),
            checks: Checks {
                status: self.status.clone(),
                body_contains: self.body_contains.clone(),
            },
        }
    }
}

/// One ramp.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// How long the ramp lasts.
    #[serde(deserialize_with = "duration::required")]
    #[schemars(with = "stampede_job::DurationText")]
    pub duration: Duration,
    /// The rate reached at its end.
    pub target: f64,
}

/// A threshold as k6 writes it: an expression, or an object with abort options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ThresholdEntry {
    /// `p(99)<50`
    Expr(String),
    /// `{threshold: "p(99)<50", abort_on_fail: true, delay_abort_eval: 10s}`
    Full(ThresholdObject),
}

/// A threshold with its abort options (k6's camelCase names are accepted too).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdObject {
    /// The expression.
    pub threshold: String,
    /// Stop the run when it fails.
    #[serde(default, alias = "abortOnFail")]
    pub abort_on_fail: bool,
    /// Do not abort before this much of the run has passed.
    #[serde(
        default,
        alias = "delayAbortEval",
        deserialize_with = "duration::option"
    )]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub delay_abort_eval: Option<Duration>,
}

/// A validated load step, ready to run.
#[derive(Debug, Clone)]
pub struct LoadSettings<P = HttpPlan> {
    /// What each call does: for HTTP, the requests.
    pub plan: P,
    /// When calls happen.
    pub schedule: Schedule,
    /// How long to schedule calls (`None`: until the iterations are done).
    pub duration: Option<Duration>,
    /// The in-flight cap (open model).
    pub max_in_flight: u64,
    /// Connections in all.
    pub connections: u64,
    /// Engine threads.
    pub threads: usize,
    /// How long calls in flight may finish after the schedule ends.
    pub graceful_stop: Duration,
    /// The thresholds.
    pub thresholds: Vec<Threshold>,
    /// Pass even when requests fail (`allow_errors`).
    pub allow_errors: bool,
}

impl<P> LoadSettings<P> {
    /// Whether failed requests alone fail the step: not allowed, and no threshold on
    /// `errors` to decide instead.
    pub fn errors_fail(&self) -> bool {
        !self.allow_errors && !self.thresholds.iter().any(|t| t.metric == Metric::Errors)
    }
}

/// The most connections or virtual users one step may ask for.
const MAX_CONNECTIONS: u64 = 1_000_000;
/// The most engine threads one step may ask for.
const MAX_THREADS: usize = 1024;

impl LoadStep {
    /// Validates the step. Each problem starts with the field it is about, so callers can
    /// prefix the step's path.
    pub fn settings(&self) -> Result<LoadSettings, Vec<String>> {
        let mut problems = Vec::new();
        let requests = self.request_specs(&mut problems);
        let schedule = self.schedule(&mut problems);
        let duration = self.duration(schedule.as_ref(), &mut problems);
        let (max_in_flight, connections, threads) =
            self.resources(schedule.as_ref(), &mut problems);
        let thresholds = self.thresholds(&mut problems);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = match HttpPlan::new(&requests, timeout, self.http2, self.insecure) {
            Ok(plan) => Some(plan),
            Err(e) => {
                let field = if self.url.is_some() {
                    "url"
                } else {
                    "requests"
                };
                problems.push(format!("{field}: {e}"));
                None
            }
        };
        match (problems.is_empty(), http, schedule) {
            (true, Some(http), Some(schedule)) => Ok(LoadSettings {
                plan: http,
                schedule,
                duration,
                max_in_flight,
                connections,
                threads,
                graceful_stop: self.graceful_stop.unwrap_or(DEFAULT_GRACEFUL_STOP),
                allow_errors: self.allow_errors,
                thresholds,
            }),
            _ => Err(problems),
        }
    }

    /// Exactly one of `rate`, `vus` and `stages`, checked by the engine's own rules.
    fn schedule(&self, problems: &mut Vec<String>) -> Option<Schedule> {
        let (field, schedule) = match (self.rate, self.vus, self.stages.is_empty()) {
            (Some(rate), None, true) => ("rate", Schedule::ConstantRate { rate }),
            (None, Some(vus), true) => {
                if vus > MAX_CONNECTIONS {
                    problems.push(format!("vus: at most {MAX_CONNECTIONS}"));
                    return None;
                }
                (
                    "vus",
                    Schedule::ConstantVus {
                        vus,
                        iterations: self.iterations,
                    },
                )
            }
            (None, None, false) => {
                let stages = self.stages.iter().map(|s| Stage {
                    duration: s.duration,
                    target: s.target,
                });
                let start_rate = self.start_rate.unwrap_or(0.0);
                (
                    "stages",
                    Schedule::RampingRate {
                        start_rate,
                        stages: stages.collect(),
                    },
                )
            }
            (None, None, true) => {
                problems.push(
                    "rate: say how to load: `rate` (calls per second), `vus` (virtual users) or `stages` (a ramp)".into(),
                );
                return None;
            }
            _ => {
                problems.push("rate: give only one of `rate`, `vus` and `stages`".into());
                return None;
            }
        };
        if let Err(e) = schedule.validate() {
            problems.push(format!("{field}: {e}"));
            return None;
        }
        if self.iterations.is_some() && self.vus.is_none() {
            problems.push("iterations: only the closed model (`vus`) counts iterations".into());
        }
        if self.start_rate.is_some() && self.stages.is_empty() {
            problems.push("start_rate: only a ramp (`stages`) has a start rate".into());
        }
        Some(schedule)
    }

    fn duration(
        &self,
        schedule: Option<&Schedule>,
        problems: &mut Vec<String>,
    ) -> Option<Duration> {
        match (schedule, self.duration) {
            (Some(Schedule::RampingRate { .. }), Some(_)) => {
                problems
                    .push("duration: a ramp lasts as long as its stages; remove `duration`".into());
                None
            }
            (Some(s @ Schedule::RampingRate { .. }), None) => s.natural_duration(),
            (_, Some(d)) if d.is_zero() => {
                problems.push("duration: must be longer than zero".into());
                None
            }
            (_, Some(d)) => Some(d),
            (
                Some(Schedule::ConstantVus {
                    iterations: Some(_),
                    ..
                }),
                None,
            ) => None,
            (Some(_), None) => {
                problems.push("duration: say how long to run, e.g. `duration: 30s`".into());
                None
            }
            (None, None) => None,
        }
    }

    /// The in-flight cap, the connections and the engine threads.
    fn resources(
        &self,
        schedule: Option<&Schedule>,
        problems: &mut Vec<String>,
    ) -> (u64, u64, usize) {
        let closed = matches!(schedule, Some(Schedule::ConstantVus { .. }));
        let vus = self.vus.unwrap_or(1).max(1);
        if closed && self.max_in_flight.is_some() {
            problems.push(
                "max_in_flight: applies to the open model; with `vus` the number of virtual users is the concurrency".into(),
            );
        }
        let max_in_flight = if closed {
            vus
        } else {
            self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT)
        };
        let connections = match self.connections {
            Some(0) => {
                problems.push("connections: must be at least 1".into());
                1
            }
            Some(n) if n > MAX_CONNECTIONS => {
                problems.push(format!("connections: at most {MAX_CONNECTIONS}"));
                1
            }
            Some(n) => n,
            None if closed => vus,
            None => max_in_flight.clamp(1, DEFAULT_OPEN_CONNECTIONS),
        };
        let threads = match self.threads {
            Some(0) => {
                problems.push("threads: must be at least 1".into());
                1
            }
            Some(n) if n > MAX_THREADS => {
                problems.push(format!("threads: at most {MAX_THREADS}"));
                1
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        (max_in_flight, connections, threads)
    }

    fn request_specs(&self, problems: &mut Vec<String>) -> Vec<RequestSpec> {
        match (&self.url, self.requests.is_empty()) {
            (Some(url), true) => {
                // The `url` shorthand is a one-request list.
                let request = RequestConfig {
                    url: url.clone(),
                    method: self.method.clone(),
                    headers: self.headers.clone(),
                    body: self.body.clone(),
                    status: self.status.clone(),
                    body_contains: self.body_contains.clone(),
                };
                vec![request.spec()]
            }
            (None, false) => self.requests.iter().map(RequestConfig::spec).collect(),
            (Some(_), false) => {
                problems.push("url: give either `url` or `requests`, not both".into());
                Vec::new()
            }
            (None, true) => Vec::new(),
        }
    }

    fn thresholds(&self, problems: &mut Vec<String>) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (metric, entries) in &self.thresholds {
            for (i, entry) in entries.iter().enumerate() {
                let parsed = match entry {
                    ThresholdEntry::Expr(expr) => Threshold::new(metric, expr, false, None),
                    ThresholdEntry::Full(t) => {
                        Threshold::new(metric, &t.threshold, t.abort_on_fail, t.delay_abort_eval)
                    }
                };
                match parsed {
                    Ok(t) => out.push(t),
                    Err(e) => problems.push(format!("thresholds.{metric}[{i}]: {e}")),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(f: impl FnOnce(&mut LoadStep)) -> Result<LoadSettings, Vec<String>> {
        let mut s = LoadStep {
            url: Some("http://127.0.0.1:1/".into()),
            ..LoadStep::default()
        };
        f(&mut s);
        s.settings()
    }

    fn problems(f: impl FnOnce(&mut LoadStep)) -> String {
        step(f).unwrap_err().join("\n")
    }

    #[test]
    fn defaults_per_model() {
        let open = step(|s| {
            s.rate = Some(100.0);
            s.duration = Some(Duration::from_secs(1));
        })
        .unwrap();
        assert_eq!((open.max_in_flight, open.connections), (1000, 100));
        let closed = step(|s| {
            s.vus = Some(7);
            s.iterations = Some(10);
        })
        .unwrap();
        assert_eq!(
            (closed.max_in_flight, closed.connections, closed.duration),
            (7, 7, None)
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(problems(|_| {}).contains("rate: say how to load"));
        assert!(
            problems(|s| {
                s.rate = Some(1.0);
                s.vus = Some(1);
            })
            .contains("only one of")
        );
        assert!(problems(|s| s.rate = Some(5.0)).contains("duration: say how long"));
        assert!(problems(|s| s.rate = Some(0.0)).contains("rate: must be positive"));
        assert!(
            problems(|s| {
                s.vus = Some(2);
                s.max_in_flight = Some(1);
                s.duration = Some(Duration::from_secs(1));
            })
            .contains("max_in_flight: applies to the open model")
        );
        assert!(
            problems(|s| {
                s.rate = Some(1.0);
                s.duration = Some(Duration::from_secs(1));
                s.connections = Some(u64::MAX);
            })
            .contains("connections: at most")
        );
        assert!(
            problems(|s| {
                s.vus = Some(1);
                s.duration = Some(Duration::from_secs(1));
                s.url = Some("localhost:80".into());
            })
            .contains("url: invalid URL")
        );
        let err = problems(|s| {
            s.vus = Some(1);
            s.duration = Some(Duration::from_secs(1));
            s.thresholds
                .insert("latency".into(), vec![ThresholdEntry::Expr("p99<5".into())]);
        });
        assert!(err.contains("thresholds.latency[0]"), "{err}");
    }
}
