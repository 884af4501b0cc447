//! Test runs with k6 cloudapi's shapes and meanings: what `stampede run --out cloud` sends
//! to the server (create, metric snapshots, finish) and what `stampede cloud run` reads back
//! (progress). A test run is a job on the server: its reference id is the job id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Summary;

/// k6's run status: where a test run is in its life. Anything above
/// [`TestRunStatus::Running`] is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i8", into = "i8")]
pub enum TestRunStatus {
    /// -2: created, nothing run yet.
    Created,
    /// -1: its options were validated.
    Validated,
    /// 0: waiting to run (a paused job waits here to be resumed).
    Queued,
    /// 1: starting.
    Initializing,
    /// 2: running.
    Running,
    /// 3: ran to its end (its thresholds may still have failed: see [`ResultStatus`]).
    Finished,
    /// 4: ran out of time.
    TimedOut,
    /// 5: stopped by a user.
    AbortedUser,
    /// 6: stopped by the system (a failure that is not the test's).
    AbortedSystem,
    /// 7: stopped by an error in the test itself.
    AbortedScriptError,
    /// 8: stopped by a threshold with `abort_on_fail`.
    AbortedThreshold,
    /// 9: stopped by a limit.
    AbortedLimit,
    /// 10: archived.
    Archived,
}

impl TestRunStatus {
    /// Every status, by code.
    pub const ALL: [TestRunStatus; 13] = [
        TestRunStatus::Created,
        TestRunStatus::Validated,
        TestRunStatus::Queued,
        TestRunStatus::Initializing,
        TestRunStatus::Running,
        TestRunStatus::Finished,
        TestRunStatus::TimedOut,
        TestRunStatus::AbortedUser,
        TestRunStatus::AbortedSystem,
        TestRunStatus::AbortedScriptError,
        TestRunStatus::AbortedThreshold,
        TestRunStatus::AbortedLimit,
        TestRunStatus::Archived,
    ];

    /// k6's number for it, -2 to 10.
    pub const fn code(self) -> i8 {
        match self {
            TestRunStatus::Created => -2,
            TestRunStatus::Validated => -1,
            TestRunStatus::Queued => 0,
            TestRunStatus::Initializing => 1,
            TestRunStatus::Running => 2,
            TestRunStatus::Finished => 3,
            TestRunStatus::TimedOut => 4,
            TestRunStatus::AbortedUser => 5,
            TestRunStatus::AbortedSystem => 6,
            TestRunStatus::AbortedScriptError => 7,
            TestRunStatus::AbortedThreshold => 8,
            TestRunStatus::AbortedLimit => 9,
            TestRunStatus::Archived => 10,
        }
    }

    /// A name for people: `running`, `aborted by threshold`, ...
    pub const fn name(self) -> &'static str {
        match self {
            TestRunStatus::Created => "created",
            TestRunStatus::Validated => "validated",
            TestRunStatus::Queued => "queued",
            TestRunStatus::Initializing => "initializing",
            TestRunStatus::Running => "running",
            TestRunStatus::Finished => "finished",
            TestRunStatus::TimedOut => "timed out",
            TestRunStatus::AbortedUser => "aborted by user",
            TestRunStatus::AbortedSystem => "aborted by system",
            TestRunStatus::AbortedScriptError => "aborted by script error",
            TestRunStatus::AbortedThreshold => "aborted by threshold",
            TestRunStatus::AbortedLimit => "aborted by limit",
            TestRunStatus::Archived => "archived",
        }
    }

    /// Whether the run has ended (k6: status above 2).
    pub const fn is_final(self) -> bool {
        self.code() > 2
    }
}

impl From<TestRunStatus> for i8 {
    fn from(status: TestRunStatus) -> i8 {
        status.code()
    }
}

impl TryFrom<i8> for TestRunStatus {
    type Error = String;

    fn try_from(code: i8) -> Result<Self, String> {
        TestRunStatus::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or_else(|| format!("{code} is not a run status (-2 to 10)"))
    }
}

/// k6's result status: whether the run's thresholds held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ResultStatus {
    /// 0: every threshold held (and every verdict passed).
    Passed,
    /// 1: a threshold was crossed, or a verdict failed (k6: the run is tainted).
    Failed,
}

impl From<ResultStatus> for u8 {
    fn from(status: ResultStatus) -> u8 {
        match status {
            ResultStatus::Passed => 0,
            ResultStatus::Failed => 1,
        }
    }
}

impl TryFrom<u8> for ResultStatus {
    type Error = String;

    fn try_from(code: u8) -> Result<Self, String> {
        match code {
            0 => Ok(ResultStatus::Passed),
            1 => Ok(ResultStatus::Failed),
            _ => Err(format!(
                "{code} is not a result status (0 passed, 1 failed)"
            )),
        }
    }
}

/// `POST /v1/tests`: a locally executed run announces itself (k6's `CreateTestRun`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTestRun {
    /// The run's name (the job's).
    pub name: String,
    /// The most virtual users (or connections) any step uses.
    #[serde(default)]
    pub vus: u64,
    /// Threshold sources by metric (`latency: ["p(99) < 500"]`).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<String>>,
    /// The planned length in seconds: -1 unknown, 0 endless.
    #[serde(default = "unknown_duration")]
    pub duration: i64,
}

fn unknown_duration() -> i64 {
    -1
}

/// The answer to [`CreateTestRun`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRunCreated {
    /// The run's reference id (the job id, as text, as k6 has it).
    pub reference_id: String,
    /// Where the run is shown: `/v1/tests/{ref}`.
    pub results_url: String,
    /// Lines for the user's log, as k6 sends them.
    #[serde(default)]
    pub logs: Vec<TestRunLog>,
}

/// One log line from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRunLog {
    /// `info`, `warning` or `error`.
    pub level: String,
    /// The line.
    pub message: String,
}

/// An interval's metrics, exactly: counters and the three latency histograms in HDR's V2
/// encoding (base64), so that the server merges them into the very histograms the run
/// built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSnapshot {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that started.
    pub started: u64,
    /// Calls cut off by the hard stop.
    pub interrupted: u64,
    /// Failed calls by failure (`timeout`, `status 503`, ...).
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
    /// Dropped calls by reason (`no_slot`, `late`).
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Response time from the intended start, µs, HDR V2 in base64.
    pub response: String,
    /// Service time, µs, HDR V2 in base64.
    pub service: String,
    /// Schedule lag, µs, HDR V2 in base64.
    pub lag: String,
}

/// One load step's interval on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSnapshot {
    /// The step, as `test/step`.
    pub step: String,
    /// The target.
    pub target: String,
    /// Seconds since the step started, at the interval's end.
    pub elapsed_s: f64,
    /// What the interval recorded.
    pub snapshot: WireSnapshot,
}

/// `POST /v1/tests/{ref}/metrics`: snapshots in the order the run made them. `first` is the
/// number of snapshots sent before these, so a retried push stores nothing twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsPush {
    /// How many snapshots of this run were sent before this batch.
    pub first: u64,
    /// The snapshots.
    pub snapshots: Vec<StepSnapshot>,
}

/// The answer to a [`MetricsPush`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsAccepted {
    /// How many snapshots of this run the server holds now.
    pub stored: u64,
    /// The run was stopped on the server (`POST /v1/tests/{ref}/stop`): stop it.
    pub stop: bool,
}

/// `POST /v1/tests/{ref}`: the run ended (k6's `TestFinished`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFinished {
    /// Whether its thresholds held.
    pub result_status: ResultStatus,
    /// How it ended (a final status).
    pub run_status: TestRunStatus,
    /// Per metric, per threshold source: whether it failed.
    #[serde(default)]
    pub thresholds: BTreeMap<String, BTreeMap<String, bool>>,
}

/// `GET /v1/test-progress/{ref}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestProgress {
    /// Where the run is.
    pub run_status: TestRunStatus,
    /// Whether it passed so far (final once the run status is).
    pub result_status: ResultStatus,
    /// How far along, 0 to 1.
    pub progress: f64,
}

/// `GET /v1/tests/{ref}`: a locally executed run as the server holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    /// The reference id.
    pub reference_id: String,
    /// The run's name.
    pub name: String,
    /// Where the run is.
    pub run_status: TestRunStatus,
    /// Whether its thresholds held.
    pub result_status: ResultStatus,
    /// What was announced at creation.
    pub created: CreateTestRun,
    /// Per metric and source, whether the threshold failed (from the finish call).
    pub thresholds: BTreeMap<String, BTreeMap<String, bool>>,
    /// How many snapshots the server holds.
    pub snapshots: u64,
    /// Per load step and target, the merged snapshots.
    pub steps: Vec<TestRunStep>,
}

/// One load step on one target, merged from its snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRunStep {
    /// The step, as `test/step`.
    pub step: String,
    /// The target.
    pub target: String,
    /// The merged numbers, in the summary's shape. Only the counts and latencies come from
    /// the snapshots; the status is the run's result.
    pub summary: Summary,
}

/// `POST /v1/validate-options`: a job descriptor to check before submitting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateOptions {
    /// The descriptor (native or ConTest), as a JSON object.
    pub options: serde_json::Value,
}

/// The answer to [`ValidateOptions`] when the descriptor is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionsValid {
    /// The job's name.
    pub name: String,
    /// How many tests it has.
    pub tests: usize,
}

/// `POST /v1/validate-token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateToken {
    /// The token's secret.
    pub token: String,
}

/// The answer to [`ValidateToken`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenValidity {
    /// Whether the token may be used.
    pub is_valid: bool,
    /// Why not, or whose it is.
    pub message: String,
    /// The token's name and project, when valid.
    #[serde(
        rename = "token-info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token_info: Option<TokenInfo>,
}

/// Who a valid token is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's name.
    pub name: String,
    /// Its project.
    pub project: String,
}

/// `POST /v1/login`: a user's name and password, for a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user's name (k6 calls it email).
    pub email: String,
    /// The password.
    pub password: String,
}

/// The answer to [`Login`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedIn {
    /// A new token's secret, shown once.
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_status_codes_are_k6s() {
        let codes: Vec<i8> = TestRunStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, (-2..=10).collect::<Vec<i8>>());
        for status in TestRunStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, status.code().to_string());
            assert_eq!(
                serde_json::from_str::<TestRunStatus>(&json).unwrap(),
                status
            );
            assert_eq!(status.is_final(), status.code() > 2, "{status:?}");
        }
        let bad = serde_json::from_str::<TestRunStatus>("11").unwrap_err();
        assert!(bad.to_string().contains("11 is not a run status"), "{bad}");
    }

    #[test]
    fn result_status_is_0_or_1() {
        assert_eq!(serde_json::to_string(&ResultStatus::Failed).unwrap(), "1");
        assert_eq!(
            serde_json::from_str::<ResultStatus>("0").unwrap(),
            ResultStatus::Passed
        );
        assert!(serde_json::from_str::<ResultStatus>("2").is_err());
    }
}
