//! Rebuilding a job's status from its events alone (ConTest's `status`, seeds-spec §2.9).
//!
//! Events are the truth: the runner writes them and forgets, and anyone holding the store
//! (the server, `stampede status`, a run reporter) folds them into a [`JobStatus`] with
//! [`rebuild`]. The fold is pure and takes one pass in sequence order, so a million events
//! cost less than reading them: strings move from the events into the status rather than
//! being copied, and only the payloads the status needs are parsed (errors, reports, run
//! numbers); plugin events keep theirs as JSON text, checked but not parsed into a tree.
//!
//! Where events go:
//!
//! * job-level events (no run, no test): the `JobState*` events give the state (the latest,
//!   the one with the highest seq), the error (the latest `JobStateFailed`), the start (the
//!   first `JobStateStarted`) and the end (the latest final state, if the job is in one);
//!   `FinalReport` gives the final reports.
//! * `RunStarted` opens a run, `RunReport` adds to its reports.
//! * test events (a run and a test) count only for the latest attempt of their test in their
//!   run: an event with a higher attempt forgets what the earlier attempt wrote. Routing
//!   events (`TargetAcquired`, `TargetAcquireErr`, `TargetReleased`, `TargetIn`,
//!   `TargetOut`, `TargetErr`) set acquisition and per-step times and errors; every other
//!   event with a step goes to its target's events in that step, or to the step's events if
//!   it is about no target.

use std::collections::HashMap;

use serde_json::Value;
use serde_json::value::RawValue;
use stampede_api::job::{
    ErrorPayload, FailedPayload, JobState, JobStatus, Report, RunStarted, RunStatus, STATUS_SCHEMA,
    StatusEvent, StepStatus, TargetStatus, TestStatus, events as names,
};
use stampede_api::testrun::{ResultStatus, TestProgress, TestRunStatus};
use stampede_core::ExitCode;
use stampede_store::{Event, Seq};

/// One test of a job's descriptor, as the status lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestLayout {
    /// The test's name (events carry it in `test`).
    pub name: String,
    /// Its steps' labels, in pipeline order (events carry them in `step`).
    pub steps: Vec<String>,
}

/// Folds the events of job `job_id` (named `name`) into its status. The events must come
/// in sequence order, as [`EventStore::events`](stampede_store::EventStore::events)
/// returns them: where the status keeps the latest of something, it is the last one given.
///
/// `layout` lists the descriptor's tests and their steps: a run lists the tests that started
/// in it in that order, and a started test lists every step of its layout, entered or not.
/// Tests and steps the layout does not know (a descriptor changed under a stored job) are
/// still shown, after the known ones, in the order they first appear. Events of other jobs
/// are ignored, and so are test events of an attempt older than the latest one seen.
///
/// Payloads that do not say what their event promises are shown rather than dropped: an
/// error payload that is not `{"Error": ...}` becomes the error's text as it is, a report
/// that is not a [`Report`] becomes a failed report by reporter `?` holding that text, and
/// a plugin event's payload that is not JSON becomes a JSON string.
///
/// ```
/// use stampede_job::status::{TestLayout, rebuild};
/// use stampede_api::job::JobState;
/// use stampede_store::Event;
///
/// let started = Event { seq: 1, job_id: 7, name: "JobStateStarted".into(), ..Event::default() };
/// let layout = [TestLayout { name: "smoke".into(), steps: vec!["ping".into()] }];
/// let status = rebuild(7, "nightly", &layout, [started]);
/// assert_eq!(status.state, JobState::Started);
/// assert!(status.runs.is_empty());
/// ```
pub fn rebuild(
    job_id: u64,
    name: &str,
    layout: &[TestLayout],
    events: impl IntoIterator<Item = Event>,
) -> JobStatus {
    let mut fold = Fold {
        layout,
        ..Fold::default()
    };
    for event in events {
        if event.job_id == job_id {
            fold.add(event);
        }
    }
    fold.finish(job_id, name)
}

/// The status being built.
#[derive(Default)]
struct Fold<'a> {
    layout: &'a [TestLayout],
    /// The state of the latest state event.
    state: Option<JobState>,
    /// The latest `JobStateFailed`'s error.
    error: Option<String>,
    /// When the first `JobStateStarted` was emitted.
    started_at_us: Option<i64>,
    /// When the latest final-state event was emitted.
    ended_at_us: Option<i64>,
    runs: Vec<RunFold>,
    final_reports: Vec<Report>,
    /// The run and test (indexes) of the previous test event: consecutive events are mostly
    /// about the same test, so this saves the searches.
    last_test: Option<(usize, usize)>,
}

struct RunFold {
    run: u32,
    /// When its `RunStarted`, or else its first event, was emitted.
    started_at_us: i64,
    /// Whether its `RunStarted` was seen.
    started: bool,
    tests: Vec<TestFold>,
    reports: Vec<Report>,
}

/// The latest attempt of one test in one run.
struct TestFold {
    name: String,
    /// Where the test sorts in its run: its place in the layout, or after the layout's tests
    /// in order of first appearance.
    order: usize,
    attempt: u32,
    acquire_error: Option<String>,
    /// One per `TargetAcquired`, in order.
    acquired: Vec<String>,
    steps: Vec<StepFold>,
    /// The index of the previous event's step, tried first.
    last_step: usize,
}

struct StepFold {
    label: String,
    events: Vec<StatusEvent>,
    /// In order of first appearance (`TargetIn`, normally).
    targets: Vec<TargetStatus>,
    /// Index in `targets` by target id.
    index: HashMap<String, usize>,
}

impl Fold<'_> {
    fn add(&mut self, event: Event) {
        match (event.run, &event.test) {
            (Some(run), Some(_)) => self.add_test_event(run, event),
            (_, None) if event.name == names::RUN_STARTED => {
                let run = event.run.or_else(|| {
                    let payload = event.payload.as_deref()?;
                    Some(serde_json::from_str::<RunStarted>(payload).ok()?.run_id)
                });
                if let Some(run) = run {
                    let r = self.run_index(run, event.emitted_at_us);
                    let run = &mut self.runs[r];
                    if !run.started {
                        (run.started, run.started_at_us) = (true, event.emitted_at_us);
                    }
                }
            }
            (Some(run), None) if event.name == names::RUN_REPORT => {
                let r = self.run_index(run, event.emitted_at_us);
                self.runs[r].reports.push(report(event.payload));
            }
            (_, None) if event.name == names::FINAL_REPORT => {
                self.final_reports.push(report(event.payload));
            }
            (_, None) => self.job_state(event),
            // A test event outside any run: the status has no place for it.
            (None, Some(_)) => {}
        }
    }

    /// Takes in a `JobState*` event; other job-level events say nothing the status shows.
    fn job_state(&mut self, event: Event) {
        let Some(state) = JobState::from_event(&event.name) else {
            return;
        };
        self.state = Some(state);
        if state == JobState::Started {
            self.started_at_us.get_or_insert(event.emitted_at_us);
        }
        if state.is_final() {
            self.ended_at_us = Some(event.emitted_at_us);
        }
        if matches!(state, JobState::Failed | JobState::PauseFailed) {
            let text = event.payload.unwrap_or_default();
            let error = serde_json::from_str::<FailedPayload>(&text).map_or(text, |p| p.err);
            self.error = Some(error);
        }
    }

    /// The index of run `run`, created (as starting at `at_us`) on its first event.
    fn run_index(&mut self, run: u32, at_us: i64) -> usize {
        if let Some(r) = self.runs.iter().rposition(|known| known.run == run) {
            return r;
        }
        self.runs.push(RunFold {
            run,
            started_at_us: at_us,
            started: false,
            tests: Vec::new(),
            reports: Vec::new(),
        });
        self.runs.len() - 1
    }

    /// The run and test indexes of a test event, creating them if needed.
    fn test_index(&mut self, run: u32, test: &str, at_us: i64) -> (usize, usize) {
        if let Some((r, t)) = self.last_test
            && self.runs[r].run == run
            && self.runs[r].tests[t].name == test
        {
            return (r, t);
        }
        let r = self.run_index(run, at_us);
        let (layout, tests) = (self.layout, &mut self.runs[r].tests);
        let t = tests
            .iter()
            .position(|known| known.name == test)
            .unwrap_or_else(|| {
                let order = layout
                    .iter()
                    .position(|known| known.name == test)
                    .unwrap_or(layout.len() + tests.len());
                tests.push(TestFold::new(test.to_owned(), order, 0, layout));
                tests.len() - 1
            });
        self.last_test = Some((r, t));
        (r, t)
    }

    fn add_test_event(&mut self, run: u32, mut event: Event) {
        let Some(name) = event.test.take() else {
            return;
        };
        let (r, t) = self.test_index(run, &name, event.emitted_at_us);
        let test = &mut self.runs[r].tests[t];
        let attempt = event.attempt.unwrap_or(0);
        if attempt > test.attempt {
            *test = TestFold::new(name, test.order, attempt, self.layout);
        } else if attempt < test.attempt {
            return;
        }
        test.add(event);
    }

    fn finish(self, job_id: u64, name: &str) -> JobStatus {
        let state = self.state.unwrap_or(JobState::Unknown);
        let mut runs: Vec<RunStatus> = self.runs.into_iter().map(RunFold::finish).collect();
        runs.sort_by_key(|run| run.run);
        JobStatus {
            schema: STATUS_SCHEMA.to_owned(),
            job_id,
            name: name.to_owned(),
            state,
            error: self.error,
            started_at_us: self.started_at_us,
            queued: None,
            ended_at_us: self.ended_at_us.filter(|_| state.is_final()),
            runs,
            final_reports: self.final_reports,
        }
    }
}

impl RunFold {
    fn finish(mut self) -> RunStatus {
        self.tests.sort_by_key(|test| test.order);
        RunStatus {
            run: self.run,
            started_at_us: self.started_at_us,
            tests: self.tests.into_iter().map(TestFold::finish).collect(),
            reports: self.reports,
        }
    }
}

impl TestFold {
    /// A test attempt before its first event, with its layout's steps if it has one.
    fn new(name: String, order: usize, attempt: u32, layout: &[TestLayout]) -> Self {
        let steps = layout
            .get(order)
            .map(|known| known.steps.iter().cloned().map(StepFold::new).collect())
            .unwrap_or_default();
        Self {
            name,
            order,
            attempt,
            acquire_error: None,
            acquired: Vec::new(),
            steps,
            last_step: 0,
        }
    }

    /// Adds an event of this attempt.
    fn add(&mut self, event: Event) {
        match event.name.as_str() {
            names::TARGET_ACQUIRED => self.acquired.extend(event.target),
            names::TARGET_ACQUIRE_ERR => self.acquire_error = Some(error_text(event.payload)),
            names::TARGET_RELEASED => {}
            // Other events without a step have no place in the status.
            _ if event.step.is_some() => self.add_step_event(event),
            _ => {}
        }
    }

    fn add_step_event(&mut self, event: Event) {
        let Event {
            seq,
            step,
            target,
            name,
            payload,
            emitted_at_us: at_us,
            ..
        } = event;
        let step = self.step(step.unwrap_or_default());
        let Some(target) = target else {
            step.events.push(status_event(seq, name, at_us, payload));
            return;
        };
        let status = step.target(target);
        match name.as_str() {
            names::TARGET_IN => status.in_at_us = Some(at_us),
            names::TARGET_OUT => status.out_at_us = Some(at_us),
            names::TARGET_ERR => {
                status.out_at_us = Some(at_us);
                status.error = Some(error_text(payload));
            }
            _ => status.events.push(status_event(seq, name, at_us, payload)),
        }
    }

    /// Step `label`, created after the known ones if the layout lacks it.
    fn step(&mut self, label: String) -> &mut StepFold {
        let known = |s: &usize| self.steps.get(*s).is_some_and(|step| step.label == label);
        let s = Some(self.last_step)
            .filter(known)
            .or_else(|| self.steps.iter().position(|step| step.label == label))
            .unwrap_or_else(|| {
                self.steps.push(StepFold::new(label));
                self.steps.len() - 1
            });
        self.last_step = s;
        &mut self.steps[s]
    }

    fn finish(self) -> TestStatus {
        // Each acquired target as it was in the last step it entered.
        let last_status = |id: &String| {
            self.steps.iter().rev().find_map(|step| {
                let status = &step.targets[*step.index.get(id)?];
                status.in_at_us.is_some().then(|| TargetStatus {
                    step: Some(step.label.clone()),
                    ..status.clone()
                })
            })
        };
        let targets = self
            .acquired
            .iter()
            .map(|id| last_status(id).unwrap_or_else(|| target_status(id.clone())))
            .collect();
        TestStatus {
            name: self.name,
            attempt: self.attempt,
            acquire_error: self.acquire_error,
            targets,
            steps: self.steps.into_iter().map(StepFold::finish).collect(),
        }
    }
}

impl StepFold {
    fn new(label: String) -> Self {
        Self {
            label,
            events: Vec::new(),
            targets: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The status of `target` in this step, created on its first event.
    fn target(&mut self, target: String) -> &mut TargetStatus {
        if let Some(&index) = self.index.get(&target) {
            return &mut self.targets[index];
        }
        let index = self.targets.len();
        self.index.insert(target.clone(), index);
        self.targets.push(target_status(target));
        &mut self.targets[index]
    }

    fn finish(self) -> StepStatus {
        StepStatus {
            label: self.label,
            events: self.events,
            targets: self.targets,
        }
    }
}

/// The status of a target nothing is known of yet.
fn target_status(target: String) -> TargetStatus {
    TargetStatus {
        target,
        step: None,
        in_at_us: None,
        out_at_us: None,
        error: None,
        events: Vec::new(),
    }
}

/// The message of an `{"Error": ...}` payload, or the payload as it is.
fn error_text(payload: Option<String>) -> String {
    let text = payload.unwrap_or_default();
    serde_json::from_str::<ErrorPayload>(&text).map_or(text, |payload| payload.error)
}

/// The report a `RunReport` or `FinalReport` holds; a failed one by `?` if it holds none.
fn report(payload: Option<String>) -> Report {
    let text = payload.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|_| Report {
        reporter: "?".to_owned(),
        success: false,
        thresholds: false,
        data: Value::String(text),
    })
}

/// A plugin event as the status shows it.
fn status_event(seq: Seq, name: String, at_us: i64, payload: Option<String>) -> StatusEvent {
    let payload = payload.and_then(|text| {
        serde_json::from_str::<Box<RawValue>>(&text)
            .or_else(|_| serde_json::value::to_raw_value(&text))
            .ok()
    });
    StatusEvent {
        seq,
        name,
        at_us,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const JOB: u64 = 7;

    /// Events as a runner writes them for job [`JOB`]: seq n, emitted at 10·n µs.
    #[derive(Default)]
    struct Log(Vec<Event>);

    impl Log {
        /// Appends `event` and returns when it was emitted.
        fn add(&mut self, event: Event) -> i64 {
            let seq = self.0.len() as u64 + 1;
            let at = seq as i64 * 10;
            self.0.push(Event {
                seq,
                job_id: JOB,
                emitted_at_us: at,
                ..event
            });
            at
        }

        fn job(&mut self, name: &str, payload: Option<&str>) -> i64 {
            self.add(Event {
                name: name.to_owned(),
                payload: payload.map(str::to_owned),
                ..Event::default()
            })
        }

        /// `RunStarted` or `RunReport`: a run and no test.
        fn run(&mut self, run: u32, name: &str, payload: &str) -> i64 {
            self.add(Event {
                run: Some(run),
                ..Event {
                    name: name.to_owned(),
                    payload: Some(payload.to_owned()),
                    ..Event::default()
                }
            })
        }

        /// A test event of run 1, test `test` at `attempt`, about `place`: `step/target`,
        /// either part empty for none.
        fn test(&mut self, (test, attempt): (&str, u32), place: &str, name: &str) -> i64 {
            self.with(test, attempt, place, name, "")
        }

        fn with(
            &mut self,
            test: &str,
            attempt: u32,
            place: &str,
            name: &str,
            payload: &str,
        ) -> i64 {
            let (step, target) = place.split_once('/').unwrap_or((place, ""));
            let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
            self.add(Event {
                run: Some(1),
                test: Some(test.to_owned()),
                attempt: Some(attempt),
                step: some(step),
                target: some(target),
                name: name.to_owned(),
                payload: some(payload),
                ..Event::default()
            })
        }

        fn rebuild(&self, layout: &[(&str, &[&str])]) -> JobStatus {
            let layout: Vec<TestLayout> = layout
                .iter()
                .map(|(name, steps)| TestLayout {
                    name: (*name).to_owned(),
                    steps: steps.iter().map(|&label| label.to_owned()).collect(),
                })
                .collect();
            rebuild(JOB, "job", &layout, self.0.clone())
        }
    }

    fn target(id: &str, in_at: i64, out_at: i64, error: Option<&str>) -> TargetStatus {
        TargetStatus {
            in_at_us: Some(in_at),
            out_at_us: Some(out_at),
            error: error.map(str::to_owned),
            ..target_status(id.to_owned())
        }
    }

    fn at_step(step: &str, status: &TargetStatus) -> TargetStatus {
        TargetStatus {
            step: Some(step.to_owned()),
            ..status.clone()
        }
    }

    fn only_test(status: &JobStatus) -> &TestStatus {
        assert_eq!(status.runs.len(), 1, "{status:#?}");
        assert_eq!(status.runs[0].tests.len(), 1, "{status:#?}");
        &status.runs[0].tests[0]
    }

    #[test]
    fn targets_have_in_and_out_times_and_errors() {
        let (t, mut log) = (("t", 0), Log::default());
        log.run(1, names::RUN_STARTED, r#"{"RunID": 1}"#);
        log.test(t, "/a", names::TARGET_ACQUIRED);
        log.test(t, "/b", names::TARGET_ACQUIRED);
        let a_in1 = log.test(t, "s1/a", names::TARGET_IN);
        let b_in1 = log.test(t, "s1/b", names::TARGET_IN);
        let a_out1 = log.test(t, "s1/a", names::TARGET_OUT);
        let a_in2 = log.test(t, "s2/a", names::TARGET_IN);
        let b_err1 = log.with("t", 0, "s1/b", names::TARGET_ERR, r#"{"Error": "exit 3"}"#);
        let a_out2 = log.test(t, "s2/a", names::TARGET_OUT);
        log.test(t, "/a", names::TARGET_RELEASED);
        log.test(t, "/b", names::TARGET_RELEASED);

        let status = log.rebuild(&[("t", &["s1", "s2"])]);
        let test = only_test(&status);
        let a1 = target("a", a_in1, a_out1, None);
        let b1 = target("b", b_in1, b_err1, Some("exit 3"));
        let a2 = target("a", a_in2, a_out2, None);
        assert!(a1.passed() && a2.passed() && !b1.passed());
        let steps: Vec<_> = test.steps.iter().map(|s| (&*s.label, &s.targets)).collect();
        assert_eq!(
            steps,
            [("s1", &vec![a1, b1.clone()]), ("s2", &vec![a2.clone()])]
        );
        // b failed in s1 and went no further: its test-level status is s1's.
        assert_eq!(test.targets, [at_step("s2", &a2), at_step("s1", &b1)]);
        assert!(test.steps.iter().all(|s| s.events.is_empty()));
        assert_eq!(status.runs[0].started_at_us, 10);
    }

    #[test]
    fn only_the_latest_attempt_counts() {
        let (first, second, mut log) = (("t", 0), ("t", 1), Log::default());
        log.run(1, names::RUN_STARTED, r#"{"RunID": 1}"#);
        log.test(first, "/a", names::TARGET_ACQUIRED);
        log.test(first, "/old", names::TARGET_ACQUIRED);
        log.test(first, "s1/a", names::TARGET_IN);
        log.with("t", 0, "s1/a", names::CMD_STDOUT, r#"{"Msg": "1st"}"#);
        log.with("t", 0, "s1/a", names::TARGET_ERR, r#"{"Error": "x"}"#);
        log.with("t", 0, "s1", names::TEST_ERROR, r#"{"Error": "x"}"#);
        log.test(second, "/a", names::TARGET_ACQUIRED);
        let a_in = log.test(second, "s1/a", names::TARGET_IN);
        // A straggler of the first attempt, written late, changes nothing.
        log.test(first, "s1/a", names::TARGET_OUT);
        let a_out = log.test(second, "s1/a", names::TARGET_OUT);

        let status = log.rebuild(&[("t", &["s1"])]);
        let test = only_test(&status);
        assert_eq!(test.attempt, 1);
        let a = target("a", a_in, a_out, None);
        assert_eq!(test.targets, [at_step("s1", &a)]);
        assert_eq!(test.steps[0].targets, [a]);
        assert_eq!(test.steps[0].events, []);
    }

    #[test]
    fn events_go_to_their_target_or_their_step() {
        let (t, mut log) = (("t", 0), Log::default());
        log.run(1, names::RUN_STARTED, r#"{"RunID": 1}"#);
        log.test(t, "/a", names::TARGET_ACQUIRED);
        let a_in = log.test(t, "s1/a", names::TARGET_IN);
        let line = log.with("t", 0, "s1/a", names::CMD_STDOUT, r#"{"Msg": "hi"}"#);
        let odd = log.with("t", 0, "s1/a", "Odd", "not json");
        let bare = log.test(t, "s1/a", "Bare");
        let failed = log.with("t", 0, "s1", names::TEST_ERROR, r#"{"Error": "e"}"#);

        let status = log.rebuild(&[("t", &["s1"])]);
        let step = &only_test(&status).steps[0];
        let event = |at_us: i64, name: &str, payload: Option<&str>| StatusEvent {
            seq: at_us as u64 / 10,
            name: name.to_owned(),
            at_us,
            payload: payload.map(|text| RawValue::from_string(text.to_owned()).unwrap()),
        };
        let error = event(failed, names::TEST_ERROR, Some(r#"{"Error": "e"}"#));
        assert_eq!(step.events, [error]);
        let a = &step.targets[0];
        assert_eq!((a.in_at_us, a.out_at_us), (Some(a_in), None));
        // Payloads are kept as written; one that is not JSON becomes a JSON string.
        let expected = [
            event(line, names::CMD_STDOUT, Some(r#"{"Msg": "hi"}"#)),
            event(odd, "Odd", Some(r#""not json""#)),
            event(bare, "Bare", None),
        ];
        assert_eq!(a.events, expected);
        // A target's test-level status carries its events in its last step too.
        assert_eq!(only_test(&status).targets[0].events, expected);
    }

    #[test]
    fn acquire_errors_and_targets_that_entered_no_step() {
        let mut log = Log::default();
        log.run(1, names::RUN_STARTED, r#"{"RunID": 1}"#);
        log.with(
            "t",
            0,
            "",
            names::TARGET_ACQUIRE_ERR,
            r#"{"Error": "no hosts"}"#,
        );
        log.test(("u", 0), "/idle", names::TARGET_ACQUIRED);
        let status = log.rebuild(&[("t", &["s1", "s2"]), ("u", &["s1"])]);
        let tests = &status.runs[0].tests;
        assert_eq!(tests[0].acquire_error.as_deref(), Some("no hosts"));
        assert_eq!(tests[0].targets, []);
        let labels: Vec<_> = tests[0].steps.iter().map(|s| &*s.label).collect();
        assert_eq!(labels, ["s1", "s2"], "a started test lists all its steps");
        assert!(tests[0].steps.iter().all(|s| s.targets.is_empty()));
        assert_eq!(tests[1].acquire_error, None);
        assert_eq!(tests[1].targets, [target_status("idle".into())]);
    }

    #[test]
    fn tests_follow_the_layout_and_runs_their_numbers() {
        let mut log = Log::default();
        // A RunStarted without a run column still names its run in the payload.
        log.job(names::RUN_STARTED, Some(r#"{"RunID": 1}"#));
        for test in ["second", "unknown", "first"] {
            log.test((test, 0), "/a", names::TARGET_ACQUIRED);
        }
        log.run(2, names::RUN_STARTED, r#"{"RunID": 2}"#);
        log.add(Event {
            run: Some(2),
            ..log.0[1].clone()
        });
        let status = log.rebuild(&[("first", &["s"]), ("skipped", &["s"]), ("second", &["s"])]);
        let runs: Vec<(u32, Vec<&str>)> = status
            .runs
            .iter()
            .map(|run| (run.run, run.tests.iter().map(|t| &*t.name).collect()))
            .collect();
        let expected = [(1, vec!["first", "second", "unknown"]), (2, vec!["second"])];
        assert_eq!(runs, expected);
        assert_eq!(status.runs[0].tests[2].steps, [], "an unknown test's steps");
    }

    #[test]
    fn reports_land_in_their_run_or_the_final_list() {
        let report = |reporter: &str, success: bool| Report {
            reporter: reporter.into(),
            success,
            thresholds: false,
            data: json!({"n": 1}),
        };
        let text = |report: &Report| serde_json::to_string(report).unwrap();
        let mut log = Log::default();
        for run in [1, 2] {
            log.run(run, names::RUN_STARTED, &format!(r#"{{"RunID": {run}}}"#));
            log.run(run, names::RUN_REPORT, &text(&report("r", run == 2)));
        }
        log.job(names::FINAL_REPORT, Some(&text(&report("f", true))));
        log.job(names::FINAL_REPORT, Some("garbage"));
        let status = log.rebuild(&[]);
        assert_eq!(status.runs[0].reports, [report("r", false)]);
        assert_eq!(status.runs[1].reports, [report("r", true)]);
        let garbled = Report {
            data: json!("garbage"),
            ..report("?", false)
        };
        assert_eq!(status.final_reports, [report("f", true), garbled]);
    }

    /// Writes job state events (with payloads) and checks the state, the start, the end and
    /// the error; times are event numbers (the n-th event is emitted at 10·n µs).
    fn check_states(
        events: &[(JobState, Option<&str>)],
        expected: (JobState, Option<i64>, Option<i64>, Option<&str>),
    ) {
        let mut log = Log::default();
        for &(state, payload) in events {
            log.job(state.event(), payload);
        }
        let status = log.rebuild(&[]);
        let found = (
            status.state,
            status.started_at_us.map(|at| at / 10),
            status.ended_at_us.map(|at| at / 10),
            status.error.as_deref(),
        );
        assert_eq!(found, expected, "{events:?}");
        assert_eq!((status.job_id, &*status.name), (JOB, "job"));
        assert_eq!(status.schema, STATUS_SCHEMA);
    }

    #[test]
    fn state_and_end_come_from_the_latest_state_event() {
        use JobState::*;
        check_states(&[], (Unknown, None, None, None));
        let pause = Some(r#"{"V": 1, "J": 7, "R": 1}"#);
        let paused = [(Started, None), (Paused, pause)];
        check_states(&paused, (Paused, Some(1), None, None));
        let resumed = [paused[0], paused[1], (Started, None), (Completed, None)];
        check_states(&resumed, (Completed, Some(1), Some(4), None));
        let error = "Job 7 failed after 1s: x";
        let failed = format!(r#"{{"Err": "{error}"}}"#);
        let failed = [(Started, None), (Failed, Some(&*failed))];
        check_states(&failed, (Failed, Some(1), Some(2), Some(error)));
        let cancelled = [(Started, None), (Cancelling, None), (Cancelled, None)];
        check_states(&cancelled, (Cancelled, Some(1), Some(3), None));
    }

    #[test]
    fn events_of_other_jobs_are_ignored() {
        let mut log = Log::default();
        log.job(JobState::Started.event(), None);
        log.job(JobState::Failed.event(), None);
        log.0[1].job_id = JOB + 1;
        assert_eq!(log.rebuild(&[]).state, JobState::Started);
    }
}

/// A load step's summary on one target, as its `LoadSummary` event recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadStepSummary {
    /// The test.
    pub test: String,
    /// The step's label.
    pub step: String,
    /// The target.
    pub target: String,
    /// What the load step did.
    pub summary: stampede_api::Summary,
}

/// Every load step's summary in `runs`, in run, test, step and target order. A payload that
/// is not a summary is skipped (the event is still in the status).
pub fn load_summaries<'a>(runs: impl IntoIterator<Item = &'a RunStatus>) -> Vec<LoadStepSummary> {
    step_payloads(runs, stampede_api::job::events::LOAD_SUMMARY)
        .into_iter()
        .map(|(test, step, target, summary)| LoadStepSummary {
            test,
            step,
            target,
            summary,
        })
        .collect()
}

/// The payloads of the step events named `name` in `runs` that decode as `T`, each with
/// its test, step label and target, in run, test, step and target order.
pub fn step_payloads<'a, T: serde::de::DeserializeOwned>(
    runs: impl IntoIterator<Item = &'a RunStatus>,
    name: &str,
) -> Vec<(String, String, String, T)> {
    let mut found = Vec::new();
    for run in runs {
        for test in &run.tests {
            for step in &test.steps {
                for target in &step.targets {
                    for payload in target_payloads(target, name) {
                        found.push((
                            test.name.clone(),
                            step.label.clone(),
                            target.target.clone(),
                            payload,
                        ));
                    }
                }
            }
        }
    }
    found
}

/// The payloads of `target`'s events named `name` that decode as `T`, in order.
pub fn target_payloads<'t, T: serde::de::DeserializeOwned>(
    target: &'t stampede_api::job::TargetStatus,
    name: &'t str,
) -> impl Iterator<Item = T> + 't {
    target
        .events
        .iter()
        .filter(move |e| e.name == name)
        .filter_map(|e| e.payload.as_ref())
        .filter_map(|p| serde_json::from_str(p.get()).ok())
}

/// The exit code of a job that ended in `state` with `status`: 0 when it completed and every
/// reporter passed; 99 when a thresholds verdict failed; 97 when another verdict failed or
/// the job failed; 105 when it was paused or cancelled.
pub fn exit_code(state: JobState, status: &JobStatus) -> ExitCode {
    match state {
        JobState::Failed | JobState::PauseFailed | JobState::CancellationFailed => {
            ExitCode::RunFailed
        }
        JobState::Paused | JobState::Cancelled | JobState::Cancelling => ExitCode::Interrupted,
        JobState::Unknown | JobState::Started => ExitCode::Other,
        JobState::Completed => {
            let reports = status
                .runs
                .iter()
                .flat_map(|r| &r.reports)
                .chain(&status.final_reports);
            let failed: Vec<_> = reports.filter(|r| !r.success).collect();
            if failed.iter().any(|r| r.thresholds) {
                ExitCode::ThresholdsCrossed
            } else if failed.is_empty() {
                ExitCode::Passed
            } else {
                ExitCode::RunFailed
            }
        }
    }
}

/// A job's progress as k6 reports a test run's: the run status its state maps to (a paused
/// job is queued, waiting to be resumed; a failed job was aborted by the system), the
/// result (failed when a verdict failed or the job failed), and the share of the
/// latest run's targets that are through every step (1 once it ended).
pub fn test_progress(status: &JobStatus) -> TestProgress {
    let run_status = match status.state {
        JobState::Unknown => TestRunStatus::Created,
        JobState::Paused => TestRunStatus::Queued,
        JobState::Started | JobState::Cancelling => TestRunStatus::Running,
        JobState::Completed => TestRunStatus::Finished,
        JobState::Cancelled => TestRunStatus::AbortedUser,
        JobState::Failed | JobState::PauseFailed | JobState::CancellationFailed => {
            TestRunStatus::AbortedSystem
        }
    };
    let result_status = match exit_code(status.state, status) {
        ExitCode::ThresholdsCrossed | ExitCode::RunFailed => ResultStatus::Failed,
        _ => ResultStatus::Passed,
    };
    let progress = if run_status.is_final() {
        1.0
    } else {
        let (done, all) = status.runs.last().map_or((0, 0), |run| {
            run.tests.iter().fold((0, 0), |(done, all), test| {
                let out = test
                    .targets
                    .iter()
                    .filter(|t| t.out_at_us.is_some())
                    .count();
                (done + out, all + test.targets.len())
            })
        });
        if all == 0 {
            0.0
        } else {
            done as f64 / all as f64
        }
    };
    TestProgress {
        run_status,
        result_status,
        progress,
    }
}
