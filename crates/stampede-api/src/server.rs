//! The job server's REST bodies (`/v1`): what the server writes and the client reads.
//! Errors use k6 cloudapi's envelope, `{"error": {"code", "message", "details",
//! "field_errors"}}`. Live events (`GET /v1/jobs/{id}/events/stream`) are server-sent
//! events whose `id` is the event's `seq` and whose `data` is an [`ApiEvent`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::job::JobState;

/// The API's version prefix.
pub const API_PREFIX: &str = "/v1";

/// k6's error envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error: a code, what to fix, and, for a bad field, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The HTTP status it came with.
    pub code: u16,
    /// What went wrong and what to do.
    pub message: String,
    /// More lines, by topic (`problems` of an invalid descriptor).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Vec<String>>,
    /// Problems by field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_errors: BTreeMap<String, Vec<String>>,
}

/// The answer to a job submission or retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCreated {
    /// The job's id.
    pub job_id: u64,
    /// Its name.
    pub name: String,
    /// Whether this request created it (false: the idempotency key was seen before).
    pub created: bool,
    /// Where its status is: `/v1/jobs/{id}`.
    pub status_url: String,
}

/// A job in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEntry {
    /// The job's id.
    pub job_id: u64,
    /// Its name.
    pub name: String,
    /// Its state now.
    pub state: JobState,
    /// Its tags.
    pub tags: Vec<String>,
    /// Who submitted it.
    pub requestor: String,
    /// The server that runs it.
    pub server_id: String,
    /// When it was submitted, µs since the epoch.
    pub requested_at_us: i64,
}

/// A page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs, by id.
    pub jobs: Vec<JobEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// A stored event as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiEvent {
    /// Its sequence number (also the id of a server-sent event).
    pub seq: u64,
    /// The run, for run and test events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u32>,
    /// The test, for test events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// The test attempt, for test events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The step's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What happened.
    pub name: String,
    /// Its payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// When, µs since the epoch.
    pub at_us: i64,
}

/// A page of events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    /// The events, by sequence number.
    pub events: Vec<ApiEvent>,
    /// Pass as `after` for the next page; absent when there were no more events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// `/v1/version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The server's version.
    pub version: String,
    /// The API version (`v1`).
    pub api: String,
    /// The server's id.
    pub server_id: String,
}
