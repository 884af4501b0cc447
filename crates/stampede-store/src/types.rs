//! The values that go into and come out of an [`EventStore`](crate::EventStore).
//!
//! They live apart from the trait so that the job runner, the server and the backends share
//! one vocabulary. Payloads and descriptors are opaque text here: `stampede-api` owns what they
//! mean, the store only keeps them byte for byte.

/// A job's id: assigned by the store, starting at 1 and increasing.
pub type JobId = u64;

/// An event's sequence number: assigned by the store, strictly increasing across the whole
/// store (so also within one job). A reader that has seen `seq` never later sees a new event
/// with a smaller one, so `after_seq` is a safe cursor for tailing a job.
pub type Seq = u64;

/// A token's id: assigned by the store, starting at 1 and increasing.
pub type TokenId = u64;

/// A user's id: assigned by the store, starting at 1 and increasing.
pub type UserId = u64;

/// The project of jobs created without one, and of jobs stored before projects existed.
pub const DEFAULT_PROJECT: &str = "default";

/// A job as submitted, before the store gives it an id. The default job belongs to
/// [`DEFAULT_PROJECT`] and has every other field empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The job's name from its descriptor.
    pub name: String,
    /// Who asked for the job.
    pub requestor: String,
    /// The server instance that owns the job.
    pub server_id: String,
    /// When the job was requested, in microseconds since the Unix epoch.
    pub requested_at_us: i64,
    /// The descriptor exactly as submitted (any format, kept byte for byte).
    pub descriptor: String,
    /// The validated, expanded descriptor as JSON text.
    pub extended_descriptor: String,
    /// The job's tags, kept in the given order.
    pub tags: Vec<String>,
    /// The job's state when created.
    pub state: String,
    /// The project the job belongs to; only tokens of that project see it.
    pub project: String,
}

impl Default for NewJob {
    fn default() -> Self {
        Self {
            name: String::new(),
            requestor: String::new(),
            server_id: String::new(),
            requested_at_us: 0,
            descriptor: String::new(),
            extended_descriptor: String::new(),
            tags: Vec::new(),
            state: String::new(),
            project: DEFAULT_PROJECT.to_owned(),
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRecord {
    /// The id the store assigned.
    pub id: JobId,
    /// The job's name from its descriptor.
    pub name: String,
    /// Who asked for the job.
    pub requestor: String,
    /// The server instance that owns the job.
    pub server_id: String,
    /// When the job was requested, in microseconds since the Unix epoch.
    pub requested_at_us: i64,
    /// The descriptor exactly as submitted.
    pub descriptor: String,
    /// The validated, expanded descriptor as JSON text.
    pub extended_descriptor: String,
    /// The job's tags, in the order they were given.
    pub tags: Vec<String>,
    /// The job's current state (see [`EventStore::set_state`](crate::EventStore::set_state)).
    pub state: String,
    /// The project the job belongs to; only tokens of that project see it.
    pub project: String,
}

impl JobRecord {
    /// The record of `job` stored under `id`.
    pub(crate) fn new(id: JobId, job: NewJob) -> Self {
        let NewJob {
            name,
            requestor,
            server_id,
            requested_at_us,
            descriptor,
            extended_descriptor,
            tags,
            state,
            project,
        } = job;
        Self {
            id,
            name,
            requestor,
            server_id,
            requested_at_us,
            descriptor,
            extended_descriptor,
            tags,
            state,
            project,
        }
    }
}

/// An event to append: a job state change, a run or test milestone, a step's event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEvent {
    /// The job the event belongs to; it must exist.
    pub job_id: JobId,
    /// The run (1-based) for test events; `None` for job-level events.
    pub run: Option<u32>,
    /// The test's name, for test events.
    pub test: Option<String>,
    /// The test attempt, from 0, for test events; `None` for job-level events.
    pub attempt: Option<u32>,
    /// The step's label, for step events.
    pub step: Option<String>,
    /// The target the event is about, if any.
    pub target: Option<String>,
    /// What happened (`JobStateStarted`, `TargetIn`, ...).
    pub name: String,
    /// The event's data as JSON text.
    pub payload: Option<String>,
    /// When the event was emitted, in microseconds since the Unix epoch.
    pub emitted_at_us: i64,
}

/// A stored event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The sequence number the store assigned.
    pub seq: Seq,
    /// The job the event belongs to.
    pub job_id: JobId,
    /// The run (1-based) for test events; `None` for job-level events.
    pub run: Option<u32>,
    /// The test's name, for test events.
    pub test: Option<String>,
    /// The test attempt, from 0, for test events; `None` for job-level events.
    pub attempt: Option<u32>,
    /// The step's label, for step events.
    pub step: Option<String>,
    /// The target the event is about, if any.
    pub target: Option<String>,
    /// What happened.
    pub name: String,
    /// The event's data as JSON text.
    pub payload: Option<String>,
    /// When the event was emitted, in microseconds since the Unix epoch.
    pub emitted_at_us: i64,
}

impl Event {
    /// The stored form of `event` under `seq`.
    pub(crate) fn new(seq: Seq, event: NewEvent) -> Self {
        let NewEvent {
            job_id,
            run,
            test,
            attempt,
            step,
            target,
            name,
            payload,
            emitted_at_us,
        } = event;
        Self {
            seq,
            job_id,
            run,
            test,
            attempt,
            step,
            target,
            name,
            payload,
            emitted_at_us,
        }
    }
}

/// Which jobs [`EventStore::list_jobs`](crate::EventStore::list_jobs) returns. Every set
/// field narrows the result; the default matches every job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Jobs in any of these states; empty matches every state.
    pub states: Vec<String>,
    /// Jobs carrying all of these tags; empty matches every job.
    pub tags: Vec<String>,
    /// Jobs owned by this server instance.
    pub server_id: Option<String>,
    /// Jobs of this project.
    pub project: Option<String>,
    /// Only jobs with an id greater than this (the last id of the previous page).
    pub after_id: Option<JobId>,
    /// At most this many jobs; 0 means no limit.
    pub limit: u32,
}

/// Which events [`EventStore::events`](crate::EventStore::events) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// The job whose events to read.
    pub job_id: JobId,
    /// Only events with a sequence number greater than this (the last one already read).
    pub after_seq: Option<Seq>,
    /// Events with any of these names; empty matches every name.
    pub names: Vec<String>,
    /// At most this many events; `None` means all.
    pub limit: Option<u32>,
}

/// An API token as created, before the store gives it an id. The store keeps only the
/// secret's hash: whoever holds the secret hashes it and looks the token up with
/// [`EventStore::token_by_hash`](crate::EventStore::token_by_hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewToken {
    /// What the token is called; unique among tokens that are not revoked.
    pub name: String,
    /// The project whose jobs the token sees.
    pub project: String,
    /// The hex SHA-256 of the token's secret; unique among all tokens, revoked ones included.
    pub hash: String,
    /// When the token was created, in microseconds since the Unix epoch.
    pub created_at_us: i64,
    /// When the token stops being valid, in microseconds since the Unix epoch; `None` for
    /// a token that never expires.
    pub expires_at_us: Option<i64>,
    /// The user a login token was issued to (`POST /v1/login`); `None` for a token made
    /// by hand. Removing the user revokes its tokens.
    pub user_name: Option<String>,
}

/// A stored API token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRecord {
    /// The id the store assigned.
    pub id: TokenId,
    /// What the token is called.
    pub name: String,
    /// The project whose jobs the token sees.
    pub project: String,
    /// The hex SHA-256 of the token's secret.
    pub hash: String,
    /// When the token was created, in microseconds since the Unix epoch.
    pub created_at_us: i64,
    /// When the token was revoked, in microseconds since the Unix epoch; `None` while it is
    /// valid.
    pub revoked_at_us: Option<i64>,
    /// When the token stops being valid, in microseconds since the Unix epoch; `None` for
    /// a token that never expires.
    pub expires_at_us: Option<i64>,
    /// The user a login token was issued to; `None` for a token made by hand.
    pub user_name: Option<String>,
}

impl TokenRecord {
    /// The record of `token` stored under `id`, not revoked.
    pub(crate) fn new(id: TokenId, token: NewToken) -> Self {
        let NewToken {
            name,
            project,
            hash,
            created_at_us,
            expires_at_us,
            user_name,
        } = token;
        Self {
            id,
            name,
            project,
            hash,
            created_at_us,
            revoked_at_us: None,
            expires_at_us,
            user_name,
        }
    }

    /// Whether the token may be used at `now_us`: neither revoked nor expired (a token
    /// expires at its `expires_at_us`, not after it).
    pub fn is_valid_at(&self, now_us: i64) -> bool {
        self.revoked_at_us.is_none() && self.expires_at_us.is_none_or(|at| now_us < at)
    }

    /// Who uses the token: the user it was issued to, or else its name (what the server
    /// records as a job's requestor).
    pub fn identity(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.name)
    }
}

/// A user as created, before the store gives it an id: who logs in with a name and a
/// password (`POST /v1/login`) for a token of their project. The store keeps the password's
/// hash only, whatever scheme made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUser {
    /// The name the user logs in with; unique.
    pub name: String,
    /// The project whose jobs the user's tokens see.
    pub project: String,
    /// The password's hash (a PHC string).
    pub password_hash: String,
    /// When the user was created, in microseconds since the Unix epoch.
    pub created_at_us: i64,
}

/// A stored user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    /// The id the store assigned.
    pub id: UserId,
    /// The name the user logs in with.
    pub name: String,
    /// The project whose jobs the user's tokens see.
    pub project: String,
    /// The password's hash (a PHC string).
    pub password_hash: String,
    /// When the user was created, in microseconds since the Unix epoch.
    pub created_at_us: i64,
}

impl UserRecord {
    /// The record of `user` stored under `id`.
    pub(crate) fn new(id: UserId, user: NewUser) -> Self {
        let NewUser {
            name,
            project,
            password_hash,
            created_at_us,
        } = user;
        Self {
            id,
            name,
            project,
            password_hash,
            created_at_us,
        }
    }
}
