//! The `robustness` step: kopia's multi-client robustness test (SPEC §8) on one target,
//! with the framework of `stampede-robust`.
//!
//! N clients, each with its own identity and data directory, authorized on the server
//! under test first and removed after, run a fixed body of actions or random weighted
//! actions for a duration; faults (a SIGKILL and restart of the server, a client restart)
//! land between actions. Every snapshot is fingerprinted first and recorded as a
//! `RobustnessSnapshot` event (`store.rs`), so snapshots of earlier runs are restored and
//! checked before this run starts; at the end every live snapshot is checked once more.
//! The statistics are a `RobustnessStats` event; any difference, lost snapshot or client
//! error fails the target with a report naming the damaged files.

mod config;
mod store;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{
    ActionError, ActionKind, Client, CommandConfig, CommandSnapshotter, Harness, HttpConfig,
    HttpSnapshotter, MetadataStore, ServerProcess, Snapshotter, Stats, VerifyReport, WriterError,
};
use stampede_api::job::events;
use stampede_api::robustness::{ClientStats, RobustnessStats, RobustnessSummary};
use tokio_util::sync::CancellationToken;

pub use config::{
    BodyAction, Faults, HttpStoreConfig, Randomized, RobustnessConfig, SnapshotterConfig,
};

use stampede_api::job::TargetStatus;
use stampede_job::{Capability, Problem, Step, StepCtx, StepError, StepOutcome, Use};
use store::EventMetaStore;

/// The most characters of one failure report kept in the step's error and statistics.
const MAX_REPORT: usize = 8000;

/// The `robustness` step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Robustness;

impl Step for Robustness {
    type Config = RobustnessConfig;
    const KEY: &'static str = "robustness";
    const SUMMARY: &'static str = "Kopia's multi-client robustness test: clients write, snapshot and restore through\na server under test, checked by fingerprints.";
    const NEEDS: &'static [Capability] = &[
        Capability::RunProcesses,
        Capability::ReadFiles,
        Capability::WriteFiles,
        Capability::Network,
    ];

    fn problems(&self, config: &RobustnessConfig, at: &str) -> Vec<Problem> {
        Problem::all_under(at, &config.problems())
    }

    fn uses(&self, config: &RobustnessConfig) -> Vec<Use> {
        let data = config.data_dir.iter().map(|d| Use::write("data_dir", d));
        let store = match &config.snapshotter {
            SnapshotterConfig::Http(h) => h.url.clone(),
            SnapshotterConfig::Command(_) => None,
        };
        let store = store.map(|url| Use::connect("snapshotter.http.url", url));
        data.chain(store).collect()
    }

    async fn run(
        &self,
        config: &RobustnessConfig,
        ctx: &StepCtx<'_>,
    ) -> Result<StepOutcome, StepError> {
        run(config, ctx).await.map_err(StepError::Failed)
    }

    /// The step's figures and failure reports.
    fn junit_output(&self, target: &TargetStatus) -> Option<String> {
        let stats = target
            .events
            .iter()
            .filter(|e| e.name == events::ROBUSTNESS_STATS)
            .filter_map(|e| e.payload.as_ref())
            .find_map(|p| serde_json::from_str(p.get()).ok())?;
        Some(stampede_report::render_robustness(&target.target, &stats))
    }
}

/// Runs the step on one target; see the module docs.
async fn run(config: &RobustnessConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, String> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Ok(StepOutcome::Failed(problems.join("; ")));
    }
    if let Err(refused) = ctx.access.own_processes(Robustness::KEY) {
        return Ok(StepOutcome::Failed(refused.to_string()));
    }
    let (work, temp) = match &config.data_dir {
        Some(dir) => match ctx.access.path(dir) {
            Ok(dir) => (dir, None),
            Err(refused) => return Ok(StepOutcome::Failed(format!("data_dir: {refused}"))),
        },
        None => {
            // On a job server, inside the job's own directory.
            let parent = ctx
                .access
                .dir()
                .map_or_else(std::env::temp_dir, Path::to_path_buf);
            let temp = tempfile::Builder::new()
                .prefix("stampede-robustness-")
                .tempdir_in(parent)
                .map_err(|e| format!("cannot create a temporary data directory: {e}"))?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    if let Err(e) = std::fs::create_dir_all(&work) {
        return Ok(StepOutcome::Failed(format!(
            "data_dir: cannot create {}: {e}",
            work.display()
        )));
    }
    // Snapshots of earlier runs can only be restored from a repository that outlived them.
    let persistent = config.data_dir.is_some()
        || matches!(&config.snapshotter, SnapshotterConfig::Http(h) if h.server.is_none());
    let earlier = config.verify_earlier && persistent;
    let (store, earlier_live) = EventMetaStore::load(ctx.events.clone(), earlier).await?;
    let seed = config.seed.unwrap_or_else(random_seed);
    tracing::debug!(step = ctx.name, target = %ctx.target.id, seed, work = %work.display(), "robustness: starting");
    let started = Instant::now();
    let clients = work.join("clients");
    let outcome = match &config.snapshotter {
        SnapshotterConfig::Command(c) => match CommandSnapshotter::new(with_work(c, &work)) {
            Ok(s) => {
                let s = Arc::new(s);
                let harness = Harness::new(clients, s.clone(), Arc::new(store), seed);
                let outcome = drive(config, ctx.cancel, harness, seed, earlier_live).await;
                // Killing it waits until its group is gone: not on a runtime thread.
                s.stop_server().await;
                outcome
            }
            Err(e) => Err(format!("snapshotter.command: {e}")),
        },
        SnapshotterConfig::Http(h) => match http_snapshotter(h, &work).await {
            Ok((s, server)) => {
                let harness = Harness::new(clients, Arc::new(s), Arc::new(store), seed);
                let outcome = drive(config, ctx.cancel, harness, seed, earlier_live).await;
                // Killing it waits until its group is gone: not on a runtime thread.
                if let Some(server) = server {
                    let _ = tokio::task::spawn_blocking(move || drop(server)).await;
                }
                outcome
            }
            Err(e) => Err(format!("snapshotter.http: {e}")),
        },
    };
    let mut stats = match outcome {
        Ok(stats) => stats,
        Err(e) => return Ok(StepOutcome::Failed(e)),
    };
    stats.elapsed_s = started.elapsed().as_secs_f64();
    if !stats.passed {
        // Kept for inspection: the failure reports name directories inside it.
        let kept = temp.map_or(work, tempfile::TempDir::keep);
        stats.kept_dirs.push(kept.display().to_string());
    }
    let payload = serde_json::to_value(&stats).map_err(|e| e.to_string())?;
    ctx.events
        .emit(events::ROBUSTNESS_STATS, Some(payload))
        .await
        .map_err(|e| e.to_string())?;
    if ctx.cancel.is_cancelled() {
        return Ok(StepOutcome::Failed(format!(
            "the job was cancelled after {} actions",
            stats.actions
        )));
    }
    Ok(if stats.passed {
        StepOutcome::passed()
    } else {
        StepOutcome::Failed(stats.failures.join("\n"))
    })
}

/// Every robustness step's statistics in `runs` (its `RobustnessStats` events), named
/// `test/step`, in run, test, step and target order.
pub fn robustness_summaries<'a>(
    runs: impl IntoIterator<Item = &'a stampede_api::job::RunStatus>,
) -> Vec<RobustnessSummary> {
    stampede_job::status::step_payloads(runs, events::ROBUSTNESS_STATS)
        .into_iter()
        .map(|(test, step, target, stats)| RobustnessSummary {
            name: format!("{test}/{step}"),
            target,
            stats,
        })
        .collect()
}

/// Starts the server when there is a `server` command, and the snapshotter for the store.
async fn http_snapshotter(
    h: &HttpStoreConfig,
    work: &Path,
) -> Result<(HttpSnapshotter, Option<Arc<Mutex<ServerProcess>>>), String> {
    let wait = h.connect_wait.unwrap_or(Duration::from_secs(10));
    let (server, url) = match &h.server {
        Some(template) => {
            let template = substitute(template, work, true);
            let url = h.url.clone();
            let started = tokio::task::spawn_blocking(move || {
                ServerProcess::start(&template, url.as_deref(), wait)
            })
            .await
            .map_err(|e| e.to_string())??;
            (Some(Arc::new(Mutex::new(started.0))), started.1)
        }
        None => (None, h.url.clone().unwrap_or_default()),
    };
    let mut config = HttpConfig::new(url);
    config.admin_token = h.admin_token.clone();
    if let Some(timeout) = h.timeout {
        config.timeout = humantime::format_duration(timeout).to_string();
    }
    config.connect_wait = humantime::format_duration(wait).to_string();
    let mut snapshotter = HttpSnapshotter::new(config).map_err(|e| e.to_string())?;
    if let Some(server) = &server {
        snapshotter = snapshotter.with_restart(crate::restart_hook(server.clone()));
    }
    Ok((snapshotter, server))
}

/// Verifies earlier snapshots, runs the clients, verifies every live snapshot.
async fn drive<S: Snapshotter, M: MetadataStore>(
    config: &RobustnessConfig,
    cancel: &CancellationToken,
    harness: Harness<S, M>,
    seed: u64,
    earlier_live: usize,
) -> Result<RobustnessStats, String> {
    let harness = harness.with_writer_options(config.writer.clone());
    harness
        .start_server()
        .await
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let mut stats = RobustnessStats {
        seed,
        clients: config.clients,
        ..RobustnessStats::default()
    };
    let mut failures = Vec::new();
    let mut verified = 0;
    if earlier_live > 0 {
        let found = verify(&harness, cancel).await;
        let found = found.map_err(|e| format!("verifying earlier snapshots: {e}"))?;
        stats.earlier_verified = found.verified;
        verified += found.verified;
        failures.extend(
            found
                .failures
                .iter()
                .map(|e| format!("earlier snapshot: {e}")),
        );
        stats
            .kept_dirs
            .extend(found.kept_dirs.iter().map(|d| d.display().to_string()));
    }
    let mut all = Stats::default();
    if failures.is_empty() {
        let actions = AtomicU64::new(0);
        let n = config.clients as usize;
        let report = harness
            .run_n(n, async |client| {
                body(config, cancel, &actions, client).await
            })
            .await;
        for c in &report.clients {
            stats.per_client.push(ClientStats {
                client: c.client.0.clone(),
                actions: by_name(&c.stats),
                error: c.result.as_ref().err().map(|e| cap(e.to_string())),
            });
            if let Err(e) = &c.result {
                failures.push(format!("client {}: {e}", c.client));
            }
            stats
                .kept_dirs
                .extend(c.kept_dirs.iter().map(|d| d.display().to_string()));
        }
        all = report.stats();
    }
    if failures.is_empty() && config.verify_at_end && !cancel.is_cancelled() {
        if config.restarts_server() {
            // What the server acknowledged must survive one more crash.
            let restarted = harness.restart_server().await;
            let restarted = restarted.map_err(|e| format!("final server restart: {e}"))?;
            stats.server_restarts += u64::from(!restarted.is_noop());
        }
        let found = verify(&harness, cancel).await;
        let found = found.map_err(|e| format!("verifying every live snapshot: {e}"))?;
        verified += found.verified;
        failures.extend(found.failures.iter().map(|e| format!("at the end: {e}")));
        stats
            .kept_dirs
            .extend(found.kept_dirs.iter().map(|d| d.display().to_string()));
    }
    let done = |kind| {
        all.0
            .get(&kind)
            .map_or(0, |s| s.count - s.errors - s.no_ops)
    };
    stats.snapshots_verified =
        verified + done(ActionKind::RestoreCompare) + done(ActionKind::RestoreIntoDataDir);
    stats.server_restarts += done(ActionKind::RestartServer);
    stats.actions = all.total_count();
    stats.total = by_name(&all);
    stats.failures = failures.into_iter().map(cap).collect();
    stats.passed = stats.failures.is_empty();
    Ok(stats)
}

/// [`Harness::verify_live`], given up when the job is cancelled.
async fn verify<S: Snapshotter, M: MetadataStore>(
    harness: &Harness<S, M>,
    cancel: &CancellationToken,
) -> Result<VerifyReport, String> {
    tokio::select! {
        found = harness.verify_live() => found.map_err(|e| e.to_string()),
        () = cancel.cancelled() => Err("the job was cancelled".to_string()),
    }
}

/// One client's work: the fixed body, or random actions until the duration has passed.
async fn body<S: Snapshotter, M: MetadataStore>(
    config: &RobustnessConfig,
    cancel: &CancellationToken,
    actions: &AtomicU64,
    client: &mut Client<S, M>,
) -> Result<(), ActionError> {
    let mut own = 0;
    if let Some(r) = &config.randomized {
        let deadline = Instant::now() + r.duration;
        while Instant::now() < deadline && !cancel.is_cancelled() {
            match client.random_action(&r.weights).await {
                Ok(_) => {}
                // As in kopia: start over from a live snapshot rather than fail.
                Err(ActionError::Writer(WriterError::NoSpace { .. })) => {
                    client.exec(ActionKind::RestoreIntoDataDir).await?;
                }
                Err(e) => return Err(e),
            }
            between(&config.faults, actions, &mut own, client).await?;
        }
        return Ok(());
    }
    for entry in &config.body {
        for _ in 0..entry.repeat {
            if cancel.is_cancelled() {
                return Ok(());
            }
            client.exec(entry.action).await?;
            between(&config.faults, actions, &mut own, client).await?;
        }
    }
    Ok(())
}

/// Injects the faults due after an action.
async fn between<S: Snapshotter, M: MetadataStore>(
    faults: &Faults,
    actions: &AtomicU64,
    own: &mut u64,
    client: &mut Client<S, M>,
) -> Result<(), ActionError> {
    *own += 1;
    let n = actions.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(every) = faults.restart_server_every
        && n.is_multiple_of(u64::from(every))
    {
        client.exec(ActionKind::RestartServer).await?;
    }
    if let Some(every) = faults.restart_client_every
        && own.is_multiple_of(u64::from(every))
    {
        client.restart().await?;
    }
    Ok(())
}

fn by_name(stats: &Stats) -> BTreeMap<String, stampede_api::robustness::ActionStats> {
    stats
        .0
        .iter()
        .map(|(kind, s)| (kind.name().to_string(), s.clone()))
        .collect()
}

/// A report cut to [`MAX_REPORT`] characters, saying so.
fn cap(mut text: String) -> String {
    if text.len() > MAX_REPORT {
        let mut end = MAX_REPORT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n  ... (report cut)");
    }
    text
}

/// The command templates with `{work}` and `{stampede}` replaced (quoted for the shell),
/// and `repo` with them replaced as they are.
fn with_work(config: &CommandConfig, work: &Path) -> CommandConfig {
    let mut c = config.clone();
    c.repo = substitute(&c.repo, work, false);
    for t in [&mut c.snapshot, &mut c.restore, &mut c.delete] {
        *t = substitute(t, work, true);
    }
    let optional = [
        &mut c.list,
        &mut c.gc,
        &mut c.start_server,
        &mut c.server,
        &mut c.server_ready,
        &mut c.authorize_client,
        &mut c.connect,
        &mut c.remove_client,
    ];
    for t in optional.into_iter().flatten() {
        *t = substitute(t, work, true);
    }
    c
}

fn substitute(template: &str, work: &Path, quote: bool) -> String {
    let exe =
        std::env::current_exe().map_or_else(|_| "stampede".into(), |p| p.display().to_string());
    let work = work.display().to_string();
    let q = |s: &str| {
        if quote {
            crate::shell_quote(s)
        } else {
            s.to_string()
        }
    };
    template
        .replace("{work}", &q(&work))
        .replace("{stampede}", &q(&exe))
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}
