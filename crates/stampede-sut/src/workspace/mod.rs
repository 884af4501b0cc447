//! A miniature workspace service under `/ws/`, after coder's: users with session tokens,
//! workspaces whose start / stop / delete builds queue for a provisioner pool, daily or
//! one-off autostart schedules, and one stream of every build's status changes. It is the
//! target of the scale step's autostart-style tests ("thundering herd").
//!
//! Everything is in memory and lost when the server stops. The state sits behind one
//! mutex; every change of a build is published to the watchers while it is held, so the
//! stream's order is the order of the changes. The HTTP surface is in [`api`].

mod api;
mod config;
mod schedule;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;

pub(crate) use api::{handle, is_workspace_path};
pub use config::WorkspaceConfig;
pub(crate) use stream::WsBody;

use api::ApiError;
use schedule::Schedule;
use stream::Streams;

/// How long shutdown waits for open streams to end cleanly.
const STREAM_DRAIN: Duration = Duration::from_secs(1);

/// What a build does to its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transition {
    Start,
    Stop,
    Delete,
}

/// Where a build is: queued, on a provisioner, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Status {
    fn is_active(self) -> bool {
        matches!(self, Status::Pending | Status::Running)
    }
}

/// Who asked for a build: a user, or the autostart scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reason {
    Initiator,
    Autostart,
}

/// One event of the watch stream (coder's `WorkspaceBuildUpdate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BuildUpdate {
    workspace_name: String,
    build_number: u64,
    transition: Transition,
    status: Status,
}

/// A workspace's latest build, as `GET` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Build {
    workspace_name: String,
    build_number: u64,
    transition: Transition,
    status: Status,
    reason: Reason,
}

/// A workspace as `GET /ws/workspaces/{name}` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkspaceView {
    name: String,
    owner: String,
    latest_build: Build,
    /// The schedule as it was given, until a one-off one has fired.
    autostart: Option<String>,
}

#[derive(Debug)]
struct Workspace {
    owner: String,
    latest: Build,
    autostart: Option<(Schedule, String)>,
    /// Set from [`State::schedules_set`] by every schedule change, so a superseded
    /// scheduler task ends (also when the workspace was deleted and made again).
    schedule_generation: u64,
}

impl Workspace {
    fn is_stopped(&self) -> bool {
        self.latest.transition == Transition::Stop && self.latest.status == Status::Succeeded
    }

    fn view(&self, name: &str) -> WorkspaceView {
        WorkspaceView {
            name: name.to_owned(),
            owner: self.owner.clone(),
            latest_build: self.latest.clone(),
            autostart: self.autostart.as_ref().map(|(_, text)| text.clone()),
        }
    }
}

#[derive(Debug)]
struct State {
    /// Name to password.
    users: HashMap<String, String>,
    /// Session token to user name.
    tokens: HashMap<String, String>,
    workspaces: HashMap<String, Workspace>,
    /// Schedule changes so far, across all workspaces.
    schedules_set: u64,
    /// Picks failed builds; seeded from the config.
    failures: SplitMix64,
    /// Makes session tokens; seeded from the clock.
    token_source: SplitMix64,
}

/// A build waiting for a provisioner.
#[derive(Debug)]
struct Job {
    workspace: String,
    number: u64,
}

/// The service: shared by every connection of one server.
#[derive(Debug, Clone)]
pub(crate) struct Workspaces(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: WorkspaceConfig,
    state: Mutex<State>,
    queue: mpsc::UnboundedSender<Job>,
    streams: Streams,
}

impl Workspaces {
    /// Starts the provisioner pool on the current tokio runtime.
    pub(crate) fn start(config: WorkspaceConfig) -> Workspaces {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let (queue, jobs) = mpsc::unbounded_channel();
        let service = Workspaces(Arc::new(Inner {
            state: Mutex::new(State {
                users: HashMap::new(),
                tokens: HashMap::new(),
                workspaces: HashMap::new(),
                schedules_set: 0,
                failures: SplitMix64(config.seed),
                token_source: SplitMix64(clock ^ 0x5eed_cafe),
            }),
            queue,
            streams: Streams::default(),
            config,
        }));
        // One FIFO queue; the tokio mutex hands it to waiting provisioners in turn.
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..service.0.config.provisioners {
            tokio::spawn(service.clone().provisioner(Arc::clone(&jobs)));
        }
        service
    }

    /// Ends every open stream cleanly before the server's runtime goes away.
    pub(crate) async fn shut_down(&self) {
        self.0.streams.shut_down(STREAM_DRAIN).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create_user(&self, name: &str, password: &str) -> Result<(), ApiError> {
        let mut state = self.lock();
        if state.users.contains_key(name) {
            return Err(ApiError::conflict(format!("user {name:?} already exists")));
        }
        state.users.insert(name.to_owned(), password.to_owned());
        Ok(())
    }

    fn log_in(&self, name: &str, password: &str) -> Result<String, ApiError> {
        let mut state = self.lock();
        if state.users.get(name).is_none_or(|p| p != password) {
            return Err(ApiError::unauthorized(
                "wrong user name or password".to_owned(),
            ));
        }
        let token = format!(
            "{:016x}{:016x}",
            state.token_source.next(),
            state.token_source.next()
        );
        state.tokens.insert(token.clone(), name.to_owned());
        Ok(token)
    }

    fn user_of(&self, token: &str) -> Option<String> {
        self.lock().tokens.get(token).cloned()
    }

    fn create_workspace(&self, owner: &str, name: &str) -> Result<WorkspaceView, ApiError> {
        let mut state = self.lock();
        if state.workspaces.contains_key(name) {
            return Err(ApiError::conflict(format!(
                "workspace {name:?} already exists; pick another name or delete it first"
            )));
        }
        let workspace = state
            .workspaces
            .entry(name.to_owned())
            .or_insert(Workspace {
                owner: owner.to_owned(),
                latest: Build {
                    workspace_name: name.to_owned(),
                    build_number: 0,
                    transition: Transition::Start,
                    status: Status::Succeeded,
                    reason: Reason::Initiator,
                },
                autostart: None,
                schedule_generation: 0,
            });
        self.queue(workspace, Transition::Start, Reason::Initiator)?;
        Ok(workspace.view(name))
    }

    fn workspace(&self, user: &str, name: &str) -> Result<WorkspaceView, ApiError> {
        let mut state = self.lock();
        Ok(owned(&mut state, user, name)?.view(name))
    }

    /// Queues a stop, start or delete build asked for by `user`.
    fn build(&self, user: &str, name: &str, transition: Transition) -> Result<Build, ApiError> {
        let mut state = self.lock();
        let workspace = owned(&mut state, user, name)?;
        self.queue(workspace, transition, Reason::Initiator)
    }

    /// Sets (or with `None` clears) the autostart schedule and starts its scheduler task.
    fn set_autostart(
        &self,
        user: &str,
        name: &str,
        text: Option<&str>,
    ) -> Result<WorkspaceView, ApiError> {
        let now = SystemTime::now();
        let schedule = text
            .map(|text| Schedule::parse(text, now).map_err(ApiError::bad_request))
            .transpose()?;
        let mut state = self.lock();
        state.schedules_set += 1;
        let generation = state.schedules_set;
        let workspace = owned(&mut state, user, name)?;
        workspace.schedule_generation = generation;
        workspace.autostart = schedule.clone().zip(text.map(str::to_owned));
        if let Some(schedule) = schedule {
            let task = self
                .clone()
                .scheduler(name.to_owned(), generation, schedule, now);
            tokio::spawn(task);
        }
        Ok(workspace.view(name))
    }

    /// A new pending build on `workspace`, published and queued; refused while one is active.
    fn queue(
        &self,
        workspace: &mut Workspace,
        transition: Transition,
        reason: Reason,
    ) -> Result<Build, ApiError> {
        let latest = &workspace.latest;
        if latest.status.is_active() {
            return Err(ApiError::conflict(format!(
                "workspace {:?} has build {} ({}) still {}; wait for it to finish",
                latest.workspace_name,
                latest.build_number,
                json_name(&latest.transition),
                json_name(&latest.status),
            )));
        }
        workspace.latest = Build {
            workspace_name: latest.workspace_name.clone(),
            build_number: latest.build_number + 1,
            transition,
            status: Status::Pending,
            reason,
        };
        self.publish(&workspace.latest);
        let _ = self.0.queue.send(Job {
            workspace: workspace.latest.workspace_name.clone(),
            number: workspace.latest.build_number,
        });
        Ok(workspace.latest.clone())
    }

    fn publish(&self, build: &Build) {
        self.0.streams.publish(&BuildUpdate {
            workspace_name: build.workspace_name.clone(),
            build_number: build.build_number,
            transition: build.transition,
            status: build.status,
        });
    }

    /// One provisioner: takes the oldest queued build, runs it for the build time, repeats.
    async fn provisioner(self, jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
        loop {
            let Some(job) = jobs.lock().await.recv().await else {
                return;
            };
            if !self.advance(&job, false) {
                continue;
            }
            if !self.0.config.build_time.is_zero() {
                tokio::time::sleep(self.0.config.build_time).await;
            }
            self.advance(&job, true);
        }
    }

    /// Moves `job`'s build to running, or (`done`) to succeeded or failed; false when the
    /// workspace is gone. A succeeded delete removes the workspace.
    fn advance(&self, job: &Job, done: bool) -> bool {
        let mut state = self.lock();
        let failed = done && state.failures.next_f64() < self.0.config.failure_rate;
        let Some(workspace) = state.workspaces.get_mut(&job.workspace) else {
            return false;
        };
        let build = &mut workspace.latest;
        if build.build_number != job.number {
            return false;
        }
        build.status = match (done, failed) {
            (false, _) => Status::Running,
            (true, false) => Status::Succeeded,
            (true, true) => Status::Failed,
        };
        self.publish(build);
        if build.transition == Transition::Delete && build.status == Status::Succeeded {
            state.workspaces.remove(&job.workspace);
        }
        true
    }

    /// Fires `schedule` for workspace `name` until it is replaced, spent or the workspace
    /// is gone; a firing starts the workspace only if it is stopped then (as coder skips).
    async fn scheduler(self, name: String, generation: u64, schedule: Schedule, set: SystemTime) {
        let mut after = set;
        while let Some(fire) = schedule.next_after(after) {
            let wait = fire.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::time::sleep(wait).await;
            let mut state = self.lock();
            let Some(workspace) = state.workspaces.get_mut(&name) else {
                return;
            };
            if workspace.schedule_generation != generation {
                return;
            }
            if workspace.is_stopped() {
                let _ = self.queue(workspace, Transition::Start, Reason::Autostart);
            }
            if schedule.is_once() {
                workspace.autostart = None;
                return;
            }
            after = fire;
        }
    }
}

/// The workspace `name` if `user` owns it; someone else's is as unknown as a missing one.
fn owned<'s>(state: &'s mut State, user: &str, name: &str) -> Result<&'s mut Workspace, ApiError> {
    match state.workspaces.get_mut(name) {
        Some(workspace) if workspace.owner == user => Ok(workspace),
        _ => Err(ApiError::not_found(format!(
            "no workspace named {name:?} (of user {user:?})"
        ))),
    }
}

/// The lowercase name serde gives an enum value, for messages.
fn json_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Steele, Lea and Flood's SplitMix64: tiny, seedable, good enough to pick failed builds.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_failures_repeat_and_follow_the_rate() {
        let draws = |seed| {
            let mut rng = SplitMix64(seed);
            (0..10_000).map(|_| rng.next_f64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let under = draws(1).iter().filter(|x| **x < 0.25).count();
        assert!(
            (2_300..2_700).contains(&under),
            "{under} of 10000 under 0.25"
        );
        assert!(draws(2).iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn enum_names_in_messages() {
        assert_eq!(json_name(&Transition::Delete), "delete");
        assert_eq!(json_name(&Status::Succeeded), "succeeded");
    }
}
