//! The compliance test every registered step passes, as the store's backends pass its
//! conformance suite: its schema is documented, a bad config is refused with problems
//! under the step's path, a cancel ends it within a second, the events it leaves carry
//! its label and target with JSON payloads, and the `junit` reporter has a case for it.
//!
//! A step's crate (or the binary, for every step of its registry) gives a [`Case`] and
//! calls [`check`]; it returns every failure at once.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stampede_core::SystemClock;
use stampede_store::EventQuery;

use crate::descriptor::DescriptorError;
use crate::registry::Registry;
use crate::runner::{self, JobControl, JobOutcome};
use crate::{Job, job_schema};

/// How soon after a cancel a step must have ended.
pub const CANCEL_WITHIN: Duration = Duration::from_secs(1);

/// How long a step runs before the cancel.
const RUN_BEFORE_CANCEL: Duration = Duration::from_millis(300);

/// What to try a step with.
#[derive(Debug, Clone)]
pub struct Case {
    /// The step's key.
    pub key: &'static str,
    /// A valid config that runs for several seconds at least unless cancelled, or, for a
    /// step that always ends at once (`echo`), one it runs to its end.
    pub config: Value,
    /// The step always ends at once: it is run to its end instead of cancelled.
    pub ends_at_once: bool,
    /// A config with a problem `validate` finds.
    pub bad: Value,
    /// The target it runs against (`local` on `127.0.0.1` when `None`).
    pub target: Option<Value>,
}

/// Checks the step of `case` in `registry`; every failure, in words. Await it inside a
/// [`tokio::task::LocalSet`].
pub async fn check(registry: &Registry, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    if registry.get(case.key).is_none() {
        return vec![format!("step {:?} is not registered", case.key)];
    }
    schema_is_documented(registry, case.key, &mut failures);
    bad_config_is_refused(registry, case, &mut failures);
    runs_and_stops(registry, case, &mut failures).await;
    failures
}

/// The step's key has a description, and so does every field of its config.
fn schema_is_documented(registry: &Registry, key: &str, failures: &mut Vec<String>) {
    let schema: Value = match serde_json::from_str(&job_schema(registry)) {
        Ok(schema) => schema,
        Err(e) => return failures.push(format!("the schema is not JSON: {e}")),
    };
    let Some(entry) = schema.pointer(&format!("/$defs/StepEntry/properties/{key}")) else {
        return failures.push(format!("the schema has no step entry key {key:?}"));
    };
    if entry["description"].as_str().is_none_or(str::is_empty) {
        failures.push(format!("the schema says nothing of {key:?} (its SUMMARY)"));
    }
    let reference = entry["anyOf"][0]["$ref"].as_str().unwrap_or_default();
    let config = reference
        .strip_prefix("#/")
        .and_then(|path| schema.pointer(&format!("/{path}")))
        .unwrap_or(&entry["anyOf"][0]);
    if let Some(Value::Object(properties)) = config.get("properties") {
        for (field, property) in properties {
            if property["description"].as_str().is_none_or(str::is_empty) {
                failures.push(format!(
                    "{key}.{field} has no doc comment (schema description)"
                ));
            }
        }
    }
}

/// A job of one test with one step `key: config` (targets as given).
fn job_text(case: &Case, config: &Value) -> String {
    let targets = match &case.target {
        Some(target) => json!({ "list": [target] }),
        None => json!({ "list": [{ "id": "local", "host": "127.0.0.1" }] }),
    };
    json!({
        "name": "compliance",
        "tests": [{
            "name": "t",
            "targets": targets,
            "steps": [{ "name": "under-test", case.key: config }],
        }],
        "reporting": { "run_reporters": ["noop"] },
    })
    .to_string()
}

fn bad_config_is_refused(registry: &Registry, case: &Case, failures: &mut Vec<String>) {
    let prefix = format!("tests[0].steps[0].{}", case.key);
    let text = job_text(case, &case.bad);
    match Job::parse(
        &text,
        "compliance.json",
        std::path::Path::new("."),
        registry,
    ) {
        Ok(_) => failures.push(format!("the bad config {} was accepted", case.bad)),
        Err(DescriptorError::Invalid { problems, .. }) => {
            if !problems.iter().all(|p| p.starts_with(&prefix)) {
                failures.push(format!(
                    "the bad config's problems are not all under {prefix}: {problems:?}"
                ));
            }
        }
        Err(other) => failures.push(format!("the bad config gave {other} instead of problems")),
    }
}

async fn runs_and_stops(registry: &Registry, case: &Case, failures: &mut Vec<String>) {
    let ends_at_once = case.ends_at_once;
    let text = job_text(case, &case.config);
    let job = match Job::parse(
        &text,
        "compliance.json",
        std::path::Path::new("."),
        registry,
    ) {
        Ok(job) => job,
        Err(e) => return failures.push(format!("the config: {e}")),
    };
    let store = match stampede_store::open("memory:").await {
        Ok(store) => store,
        Err(e) => return failures.push(format!("cannot open a memory store: {e}")),
    };
    let clock = SystemClock::shared();
    let id = match runner::submit(&store, clock.as_ref(), &job, &text, "compliance", "").await {
        Ok(id) => id,
        Err(e) => return failures.push(format!("cannot submit: {e}")),
    };
    let control = JobControl::default();
    let cancel = control.cancel.clone();
    let cancelled_at = Rc::new(Cell::new(None::<Instant>));
    if !ends_at_once {
        let at = cancelled_at.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(RUN_BEFORE_CANCEL).await;
            at.set(Some(Instant::now()));
            cancel.cancel();
        });
    }
    let outcome = runner::run_job(store.clone(), clock, id, &job, None, &control, &()).await;
    let ended = Instant::now();
    match (&outcome, ends_at_once) {
        (Ok(JobOutcome::Cancelled), false) | (Ok(JobOutcome::Completed), true) => {}
        (other, _) => failures.push(format!("the job ended {other:?}")),
    }
    let cancelled = cancelled_at.get();
    if let Some(at) = cancelled
        && ended.duration_since(at) > CANCEL_WITHIN
    {
        failures.push(format!(
            "the step ended {:?} after the cancel (at most {CANCEL_WITHIN:?})",
            ended.duration_since(at)
        ));
    }
    if !ends_at_once && cancelled.is_none() {
        failures.push("the step ended before the cancel: give a longer-running config".into());
    }
    events_are_well_formed(&store, id, failures).await;
    junit_has_a_case(&store, id, &job, failures).await;
}

async fn events_are_well_formed(
    store: &Arc<dyn stampede_store::EventStore>,
    id: u64,
    failures: &mut Vec<String>,
) {
    let query = EventQuery {
        job_id: id,
        ..EventQuery::default()
    };
    let events = match store.events(&query).await {
        Ok(events) => events,
        Err(e) => return failures.push(format!("cannot read the events: {e}")),
    };
    let in_step: Vec<_> = events
        .iter()
        .filter(|e| e.step.as_deref() == Some("under-test"))
        .collect();
    if !in_step
        .iter()
        .any(|e| e.name == stampede_api::job::events::TARGET_IN)
    {
        failures.push("no TargetIn event for the step".into());
    }
    for event in in_step {
        if event.target.is_none() {
            failures.push(format!("event {} has no target", event.name));
        }
        if let Some(payload) = &event.payload
            && serde_json::from_str::<Value>(payload).is_err()
        {
            failures.push(format!(
                "event {}'s payload is not JSON: {payload}",
                event.name
            ));
        }
    }
}

async fn junit_has_a_case(
    store: &Arc<dyn stampede_store::EventStore>,
    id: u64,
    job: &Job,
    failures: &mut Vec<String>,
) {
    let status = match runner::job_status(store, id, job).await {
        Ok(status) => status,
        Err(e) => return failures.push(format!("cannot rebuild the status: {e}")),
    };
    let runs: Vec<_> = status.runs.iter().collect();
    let report = runner::junit_report(job, &runs);
    let cases = report
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.name == "under-test")
        .count();
    if cases == 0 {
        failures.push("the junit reporter has no testcase for the step".into());
    }
}
