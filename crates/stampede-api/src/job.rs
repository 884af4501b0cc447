//! The persisted vocabulary of jobs: targets, job states and their event names, the events
//! the job runner writes, the pause payload, and the status rebuilt from events.
//!
//! Names follow ConTest (seeds-spec §2.4, §2.8, §2.9) so that a ConTest user recognises
//! them: `JobStateStarted`, `TargetIn`, `TargetOut`, the pause payload's `V/J/R/T/TA/NTA/S/
//! TT/TRS` keys. Everything here is versioned: a payload with an unknown version is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One unit under test, provided by a target manager.
///
/// Native descriptors write `id`, `host`, `url`; ConTest's `ID`, `FQDN`, `PrimaryIPv4`,
/// `PrimaryIPv6` and `TMS` are read as aliases (ConTest keys arrive lower-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique within the test; never blank.
    pub id: String,
    /// Host name (ConTest's FQDN).
    #[serde(default, alias = "fqdn", skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// IPv4 address, if known.
    #[serde(
        default,
        alias = "primaryipv4",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4: String,
    /// IPv6 address, if known.
    #[serde(
        default,
        alias = "primaryipv6",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6: String,
    /// A URL for the target, if it has one (`{{ target.url }}`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The target manager's private state, kept across pause and resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tms: Option<serde_json::Value>,
}

impl Target {
    /// A target with only an id.
    pub fn new(id: impl Into<String>) -> Target {
        Target {
            id: id.into(),
            ..Target::default()
        }
    }
}

/// A job's state. The numbers are ConTest's (persisted by some tools); the store keeps the
/// [`name`](JobState::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// No state event yet.
    Unknown = 0,
    /// Running (also after a resume).
    Started = 1,
    /// The runner finished every run. Says nothing of the verdict: reporters do.
    Completed = 2,
    /// The framework failed (a step crashed, an acquire timed out, a release failed...).
    Failed = 3,
    /// Paused with a payload to resume from.
    Paused = 4,
    /// A pause was asked for but could not be taken.
    PauseFailed = 5,
    /// A cancel was asked for; the runner is winding down.
    Cancelling = 6,
    /// Cancelled.
    Cancelled = 7,
    /// A cancel was asked for but the runner did not stop.
    CancellationFailed = 8,
}

impl JobState {
    /// Every state, in ConTest's order.
    pub const ALL: [JobState; 9] = [
        JobState::Unknown,
        JobState::Started,
        JobState::Completed,
        JobState::Failed,
        JobState::Paused,
        JobState::PauseFailed,
        JobState::Cancelling,
        JobState::Cancelled,
        JobState::CancellationFailed,
    ];

    /// The state's name, as stored and printed: `started`, `pause-failed`, ...
    pub const fn name(self) -> &'static str {
        match self {
            JobState::Unknown => "unknown",
            JobState::Started => "started",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Paused => "paused",
            JobState::PauseFailed => "pause-failed",
            JobState::Cancelling => "cancelling",
            JobState::Cancelled => "cancelled",
            JobState::CancellationFailed => "cancellation-failed",
        }
    }

    /// The name of the event that records the state: `JobStateStarted`, ...
    pub const fn event(self) -> &'static str {
        match self {
            JobState::Unknown => "JobStateUnknown",
            JobState::Started => "JobStateStarted",
            JobState::Completed => "JobStateCompleted",
            JobState::Failed => "JobStateFailed",
            JobState::Paused => "JobStatePaused",
            JobState::PauseFailed => "JobStatePauseFailed",
            JobState::Cancelling => "JobStateCancelling",
            JobState::Cancelled => "JobStateCancelled",
            JobState::CancellationFailed => "JobStateCancellationFailed",
        }
    }

    /// The state a state event records.
    pub fn from_event(name: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.event() == name)
    }

    /// The state with this name.
    pub fn from_name(name: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the job has ended for good (ConTest's completion events).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::Cancelled
                | JobState::CancellationFailed
        )
    }
}

/// The names of the events the job runner writes besides the job states.
pub mod events {
    /// A run began; payload [`RunStarted`](super::RunStarted).
    pub const RUN_STARTED: &str = "RunStarted";
    /// A target was acquired for a test attempt (no step).
    pub const TARGET_ACQUIRED: &str = "TargetAcquired";
    /// Acquiring targets failed; payload [`ErrorPayload`](super::ErrorPayload).
    pub const TARGET_ACQUIRE_ERR: &str = "TargetAcquireErr";
    /// A target entered a step.
    pub const TARGET_IN: &str = "TargetIn";
    /// A target left a step successfully.
    pub const TARGET_OUT: &str = "TargetOut";
    /// A target failed a step; payload [`ErrorPayload`](super::ErrorPayload).
    pub const TARGET_ERR: &str = "TargetErr";
    /// A target was released after a test attempt.
    pub const TARGET_RELEASED: &str = "TargetReleased";
    /// A step failed as a whole; payload [`ErrorPayload`](super::ErrorPayload).
    pub const TEST_ERROR: &str = "TestError";
    /// A run reporter's verdict; payload [`Report`](super::Report).
    pub const RUN_REPORT: &str = "RunReport";
    /// A final reporter's verdict; payload [`Report`](super::Report).
    pub const FINAL_REPORT: &str = "FinalReport";
    /// A load step's summary; payload [`Summary`](crate::Summary).
    pub const LOAD_SUMMARY: &str = "LoadSummary";
    /// A scale step's results on one target; payload
    /// [`ScaleResults`](crate::scale::ScaleResults).
    pub const SCALE_RESULTS: &str = "ScaleResults";
    /// A step set a variable; payload [`Variable`](super::Variable).
    pub const STEP_VARIABLE: &str = "StepVariable";
    /// Events a step plugin writes about a target.
    pub const CMD_START: &str = "CmdStart";
    /// The command ended; payload `{"ExitCode": n}`.
    pub const CMD_END: &str = "CmdEnd";
    /// One line of the command's standard output; payload `{"Msg": "..."}`.
    pub const CMD_STDOUT: &str = "CmdStdout";
    /// One line of the command's standard error; payload `{"Msg": "..."}`.
    pub const CMD_STDERR: &str = "CmdStderr";
    /// `randecho` passed a target.
    pub const TARGET_SUCCEEDED: &str = "TargetSucceeded";
    /// `randecho` failed a target.
    pub const TARGET_FAILED: &str = "TargetFailed";
    /// An `http` step's answer; payload `{"Status": n, "Ms": f}`.
    pub const HTTP_RESPONSE: &str = "HttpResponse";
    /// A locally executed test run was created (`stampede run --out cloud`); payload
    /// [`CreateTestRun`](crate::testrun::CreateTestRun).
    pub const TEST_RUN_CREATED: &str = "TestRunCreated";
    /// One load step's interval from a locally executed run; step and target in the event,
    /// payload `{"elapsed_s": f, "snapshot": WireSnapshot}`.
    pub const METRIC_SNAPSHOT: &str = "MetricSnapshot";
    /// Someone asked to stop a locally executed run; its next metrics push is told so.
    pub const TEST_RUN_STOP: &str = "TestRunStopRequested";
    /// A locally executed run ended; payload [`TestFinished`](crate::testrun::TestFinished).
    pub const TEST_RUN_FINISHED: &str = "TestRunFinished";
    /// A robustness step's client took or deleted a snapshot; payload
    /// [`SnapshotRecord`](crate::robustness::SnapshotRecord).
    pub const ROBUSTNESS_SNAPSHOT: &str = "RobustnessSnapshot";
    /// A robustness step's statistics on one target; payload
    /// [`RobustnessStats`](crate::robustness::RobustnessStats).
    pub const ROBUSTNESS_STATS: &str = "RobustnessStats";
}

/// Payload of `RunStarted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The run, from 1.
    #[serde(rename = "RunID")]
    pub run_id: u32,
}

/// Payload of the events that carry an error message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// What went wrong.
    #[serde(rename = "Error")]
    pub error: String,
}

/// Payload of `JobStateFailed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPayload {
    /// `Job 3 failed after 1.2s: ...`
    #[serde(rename = "Err")]
    pub err: String,
}

/// Payload of `StepVariable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: serde_json::Value,
}

/// A reporter's verdict, the payload of `RunReport` and `FinalReport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The reporter's name.
    pub reporter: String,
    /// Whether the run (or the job) passed by this reporter's criteria.
    pub success: bool,
    /// Whether a failure is a crossed threshold (exit code 99) rather than another failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thresholds: bool,
    /// What the reporter found, in its own shape.
    pub data: serde_json::Value,
}

/// The version of [`PausePayload`] this build writes and reads.
pub const PAUSE_PAYLOAD_VERSION: u32 = 1;
/// The version of [`TestRunnerState`] this build writes and reads.
pub const TEST_RUNNER_STATE_VERSION: u32 = 2;

/// Where a paused job was: the payload of `JobStatePaused`, and what `--resume` starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PausePayload {
    /// [`PAUSE_PAYLOAD_VERSION`].
    #[serde(rename = "V")]
    pub version: u32,
    /// The job.
    #[serde(rename = "J")]
    pub job_id: u64,
    /// The run it was in (or about to start), from 1.
    #[serde(rename = "R")]
    pub run: u32,
    /// The test it was in, from 1; absent when paused between runs.
    #[serde(rename = "T", default, skip_serializing_if = "Option::is_none")]
    pub test: Option<u32>,
    /// The test's attempt, from 0.
    #[serde(rename = "TA", default)]
    pub attempt: u32,
    /// When the next attempt may start, µs since the epoch, if paused while waiting to retry.
    #[serde(rename = "NTA", default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_us: Option<i64>,
    /// When the next run starts, µs since the epoch, if paused during the run interval.
    #[serde(rename = "S", default, skip_serializing_if = "Option::is_none")]
    pub start_at_us: Option<i64>,
    /// The targets acquired for the test, kept (not released) while paused.
    #[serde(rename = "TT", default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Where each target was in the step pipeline.
    #[serde(rename = "TRS", default, skip_serializing_if = "Option::is_none")]
    pub test_runner: Option<TestRunnerState>,
}

/// Where each target of a paused test was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRunnerState {
    /// [`TEST_RUNNER_STATE_VERSION`].
    #[serde(rename = "V")]
    pub version: u32,
    /// By target id.
    #[serde(rename = "T")]
    pub targets: BTreeMap<String, TargetState>,
}

/// One target's place in the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    /// The step it is in (or goes to next), from 0; the number of steps when it is done.
    #[serde(rename = "S")]
    pub step: usize,
    /// Whether it already entered that step (its `TargetIn` was written).
    #[serde(rename = "P")]
    pub entered: bool,
    /// The error that stopped it, if one did.
    #[serde(rename = "R", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its step variables, by step label then name.
    #[serde(rename = "V", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The paused step's own state to resume from (a sleep's deadline, ...).
    #[serde(rename = "SS", default, skip_serializing_if = "Option::is_none")]
    pub step_state: Option<serde_json::Value>,
}

/// The schema name and version of [`JobStatus`] documents.
pub const STATUS_SCHEMA: &str = "stampede.status/v1";

/// A job's status, rebuilt from its events alone (latest attempt of each test only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Always [`STATUS_SCHEMA`].
    pub schema: String,
    /// The job.
    pub job_id: u64,
    /// Its name.
    pub name: String,
    /// The state of the latest state event.
    pub state: JobState,
    /// The error of the latest `JobStateFailed`, if the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it first started, µs since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_us: Option<i64>,
    /// Waiting for a slot on its server, at this place in the queue (from 1): the server
    /// runs as many jobs at once as its policy allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u32>,
    /// When it ended, µs since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_us: Option<i64>,
    /// One entry per run that started, in order.
    pub runs: Vec<RunStatus>,
    /// The final reporters' verdicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_reports: Vec<Report>,
}

/// One run's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The run, from 1.
    pub run: u32,
    /// When it started, µs since the epoch.
    pub started_at_us: i64,
    /// Its tests, in descriptor order (those that started).
    pub tests: Vec<TestStatus>,
    /// The run reporters' verdicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<Report>,
}

/// One test's status in a run: its latest attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestStatus {
    /// The test's name.
    pub name: String,
    /// The attempt shown, from 0.
    pub attempt: u32,
    /// Why acquiring targets failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_error: Option<String>,
    /// Each acquired target's status after the last step it reached.
    pub targets: Vec<TargetStatus>,
    /// Each step's status, in pipeline order.
    pub steps: Vec<StepStatus>,
}

/// One step's status in a test attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    /// The step's label.
    pub label: String,
    /// Events of the step that are about no target (`TestError`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<StatusEvent>,
    /// Each target that entered the step.
    pub targets: Vec<TargetStatus>,
}

/// A target's status in a step (or, in [`TestStatus::targets`], after its last step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target's id.
    pub target: String,
    /// The step it reached (in [`TestStatus::targets`]); absent if it never entered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// When it entered, µs since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_at_us: Option<i64>,
    /// When it left, µs since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_at_us: Option<i64>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its other events in this step (routing events excluded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<StatusEvent>,
}

impl TargetStatus {
    /// Whether the target passed: it left the step without an error.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.out_at_us.is_some()
    }
}

/// An event as shown in a status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusEvent {
    /// Its sequence number in the store.
    pub seq: u64,
    /// Its name.
    pub name: String,
    /// When it was emitted, µs since the epoch.
    pub at_us: i64,
    /// Its payload, JSON text as the step wrote it. Raw rather than a `Value`: a status can
    /// hold a million plugin events, and parsing each payload into a tree (and freeing it)
    /// took longer than reading the events from the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<serde_json::value::RawValue>>,
}

/// Events are equal when their payloads are the same text (not merely the same JSON value).
impl PartialEq for StatusEvent {
    fn eq(&self, other: &Self) -> bool {
        fn text(event: &StatusEvent) -> Option<&str> {
            event
                .payload
                .as_deref()
                .map(serde_json::value::RawValue::get)
        }
        self.seq == other.seq
            && self.name == other.name
            && self.at_us == other.at_us
            && text(self) == text(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_and_events_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::from_event(state.event()), Some(state));
            assert_eq!(JobState::from_name(state.name()), Some(state));
        }
        assert_eq!(JobState::PauseFailed as u8, 5);
        assert!(JobState::Completed.is_final() && !JobState::Paused.is_final());
    }

    #[test]
    fn contest_target_keys_are_read() {
        let target: Target = serde_json::from_str(
            r#"{"id": "1234", "fqdn": "example.org", "primaryipv4": "10.0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(target.host, "example.org");
        assert_eq!(target.ipv4, "10.0.0.1");
        let text = serde_json::to_string(&target).unwrap();
        assert_eq!(
            text,
            r#"{"id":"1234","host":"example.org","ipv4":"10.0.0.1"}"#
        );
    }

    #[test]
    fn pause_payload_uses_contest_keys() {
        let payload = PausePayload {
            version: PAUSE_PAYLOAD_VERSION,
            job_id: 3,
            run: 2,
            test: None,
            attempt: 0,
            next_attempt_at_us: None,
            start_at_us: Some(1_000),
            targets: vec![],
            test_runner: None,
        };
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"V": 1, "J": 3, "R": 2, "TA": 0, "S": 1000})
        );
        assert_eq!(
            serde_json::from_value::<PausePayload>(json).unwrap(),
            payload
        );
    }
}
