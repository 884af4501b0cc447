//! Where the server's jobs run: each on a thread of its own, in a working directory of its
//! own, at most the policy's number at once in all and per project; the rest wait, queued
//! in the order they came, and start as running jobs end.
//!
//! A queued job has no state event yet (its state is `unknown`, its status says `queued`),
//! so a server that stops with jobs queued starts them again when it recovers.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use stampede_api::job::PausePayload;
use stampede_job::Job;
use stampede_job::runner::{self, JobControl, JobOutcome};
use stampede_store::JobId;

use crate::State;

/// A job running on this server.
pub(crate) struct Running {
    pub(crate) control: JobControl,
    pub(crate) thread: std::thread::JoinHandle<()>,
    project: String,
}

/// A job waiting for a slot.
struct Queued {
    id: JobId,
    job: Job,
    resume: Option<PausePayload>,
    project: String,
}

/// The jobs running on this server, and those waiting.
#[derive(Default)]
pub(crate) struct Slots {
    running: HashMap<JobId, Running>,
    queued: VecDeque<Queued>,
}

impl Slots {
    /// Whether job `id` runs here (also while its thread winds down).
    pub(crate) fn is_running(&self, id: JobId) -> bool {
        self.running.contains_key(&id)
    }

    /// The control of job `id`, if it runs here.
    pub(crate) fn control(&self, id: JobId) -> Option<JobControl> {
        self.running.get(&id).map(|r| r.control.clone())
    }

    /// Job `id`'s place in the queue, from 1, if it waits.
    pub(crate) fn queued_at(&self, id: JobId) -> Option<u32> {
        let at = self.queued.iter().position(|q| q.id == id)?;
        Some(u32::try_from(at + 1).unwrap_or(u32::MAX))
    }

    /// Takes job `id` out of the queue; whether it was there.
    pub(crate) fn dequeue(&mut self, id: JobId) -> bool {
        let before = self.queued.len();
        self.queued.retain(|q| q.id != id);
        self.queued.len() != before
    }

    /// Every running job, taken out of the table; the queue is dropped (those jobs start
    /// again when the server recovers).
    pub(crate) fn drain(&mut self) -> Vec<Running> {
        self.queued.clear();
        self.running.drain().map(|(_, r)| r).collect()
    }

    /// Whether the queue is full (the policy's `jobs_queued`).
    pub(crate) fn queue_is_full(&self, state: &State) -> bool {
        self.queued.len() >= state.policy.limits.jobs_queued
    }

    fn running_for(&self, project: &str) -> usize {
        self.running
            .values()
            .filter(|r| r.project == project)
            .count()
    }
}

/// Runs `job` (of `project`) from `resume` if given, now or when a slot frees; `false`,
/// doing nothing, when job `id` already runs or waits here.
pub(crate) fn spawn(
    state: &Arc<State>,
    id: JobId,
    job: Job,
    resume: Option<PausePayload>,
    project: &str,
) -> bool {
    let mut slots = state.slots.lock().expect("the job table is never poisoned");
    if slots.is_running(id) || slots.queued.iter().any(|q| q.id == id) {
        return false;
    }
    let queued = Queued {
        id,
        job,
        resume,
        project: project.to_string(),
    };
    if has_room(state, &slots, project) {
        start(state, &mut slots, queued);
    } else {
        tracing::info!(
            job = id,
            project,
            "job queued: the server runs as many as it may"
        );
        slots.queued.push_back(queued);
    }
    true
}

fn has_room(state: &State, slots: &Slots, project: &str) -> bool {
    slots.running.len() < state.policy.limits.jobs_running
        && slots.running_for(project) < state.policy.jobs_running(project)
}

/// The working directory of job `id`.
pub(crate) fn job_dir(state: &State, id: JobId) -> PathBuf {
    state.jobs_dir.join(format!("job-{id}"))
}

/// Makes job `id`'s working directory, private to it (and to the `run_as` user).
fn make_dir(state: &State, id: JobId) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = job_dir(state, id);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    if let Some(user) = &state.processes.run_as {
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))?;
    }
    Ok(dir)
}

/// Removes job `id`'s working directory, if it has one.
pub(crate) fn remove_dir(state: &State, id: JobId) {
    let dir = job_dir(state, id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(job = id, dir = %dir.display(), error = %e, "cannot remove the job's directory")
        }
    }
}

/// Starts `queued` on a thread of its own (the slot table is held).
fn start(state: &Arc<State>, slots: &mut Slots, queued: Queued) {
    let Queued {
        id,
        mut job,
        resume,
        project,
    } = queued;
    let control = JobControl::default();
    let dir = make_dir(state, id);
    if let Ok(dir) = &dir {
        let grants = state.policy.grants(&project);
        job.access = grants.access(Some(dir.clone()), &state.processes);
    }
    let thread = {
        let state = state.clone();
        let control = control.clone();
        let (job, resume) = (job.clone(), resume.clone());
        std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || {
                // Leaves its slot however the job ends, a panic included.
                let _leave = Leave { state: &state, id };
                run(&state, id, &job, resume, &control, dir);
            })
    };
    match thread {
        Ok(thread) => {
            slots.running.insert(
                id,
                Running {
                    control,
                    thread,
                    project,
                },
            );
        }
        Err(e) => {
            // Tried again when a running job ends (or when the server recovers).
            tracing::error!(job = id, error = %e, "cannot start the job's thread; queued again");
            slots.queued.push_front(Queued {
                id,
                job,
                resume,
                project,
            });
        }
    }
}

/// Frees a job's slot when its thread ends, and starts what now has room.
struct Leave<'a> {
    state: &'a Arc<State>,
    id: JobId,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut slots = self
            .state
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.running.remove(&self.id);
        start_next(self.state, &mut slots);
    }
}

/// Starts the first queued jobs that now have room.
fn start_next(state: &Arc<State>, slots: &mut Slots) {
    while let Some(at) = slots
        .queued
        .iter()
        .position(|q| has_room(state, slots, &q.project))
    {
        let next = slots
            .queued
            .remove(at)
            .expect("the position is in the queue");
        tracing::info!(job = next.id, "queued job starting");
        start(state, slots, next);
    }
}

/// Runs one job on this thread, and removes its directory unless it paused.
fn run(
    state: &Arc<State>,
    id: JobId,
    job: &Job,
    resume: Option<PausePayload>,
    control: &JobControl,
    dir: std::io::Result<PathBuf>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(job = id, error = %e, "cannot build the job's runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let (store, clock) = (state.store.clone(), state.clock.clone());
    if let Err(e) = dir {
        let why = format!(
            "cannot make the job's working directory {}: {e}",
            job_dir(state, id).display()
        );
        tracing::error!(job = id, why = %why, "job failed");
        let _ = local.block_on(&runtime, runner::record_failure(&store, &clock, id, why));
        return;
    }
    tracing::info!(job = id, resumed = resume.is_some(), "job started");
    let ran = local.block_on(
        &runtime,
        runner::run_job(store, clock, id, job, resume, control, &()),
    );
    match &ran {
        Ok(outcome) => tracing::info!(job = id, state = outcome.state().name(), "job ended"),
        Err(e) => tracing::error!(job = id, error = %e, "job runner stopped"),
    }
    // A paused job resumes in its directory; one whose runner stopped on a store error is
    // settled (and its directory removed) when the server recovers.
    if matches!(&ran, Ok(outcome) if !matches!(outcome, JobOutcome::Paused(_))) {
        remove_dir(state, id);
    }
}
