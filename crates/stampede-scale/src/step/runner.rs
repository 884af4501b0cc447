//! The phase interpreter: a compiled lifecycle ([`Plan`]) and one [`Runner`] per runner,
//! which the harness runs ([`Runnable`]) and cleans up ([`Cleanable`]).
//!
//! A runner keeps its saved values (`id`, `index`, the setup's, and whatever its phases
//! save) and its marks in a [`RunnerState`] the step reads after the runs, also for a run
//! that failed or was stopped half-way. Its barrier places and stream subscriptions are
//! taken into the run's future when it starts, so a run that ends in any way (error,
//! panic, timeout) leaves every barrier and drops its stream buffer.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{BoxError, Cleanable, Ctx, Participant, RunCtx, Runnable, Updates, WaitError};
use bytes::Bytes;
use http::Method;
use serde_json::Value;
use stampede_api::job::Target;
use tokio::time::Instant;

use super::client::Call;
use super::config::{HttpPhase, MarkPhase, Matcher, Phase, ScaleConfig, TimeFormat};
use super::jsonpath::{self, JsonPath};
use stampede_job::template::{self, Context, Template};
use stampede_job::{Access, Vars};

/// Scale templates see no step variables: they are rendered per runner, not per target.
static NO_VARS: Vars = BTreeMap::new();

/// A lifecycle compiled once for all runners: templates parsed, paths read.
pub(crate) struct Plan {
    pub(crate) target: Target,
    /// The hosts the job may reach: every rendered URL is checked.
    access: Access,
    pub(crate) setup: Vec<Step>,
    pub(crate) phases: Vec<Step>,
    pub(crate) cleanup: Vec<Step>,
    /// Times of `shared` marks, set by the first runner to reach them.
    shared_marks: Mutex<HashMap<String, SystemTime>>,
}

/// One compiled phase.
pub(crate) struct Step {
    pub(crate) label: String,
    timeout: Option<Duration>,
    action: Action,
}

enum Action {
    Http(Req),
    Stream {
        stream: String,
        wait: Wait,
    },
    Poll {
        req: Req,
        interval: Duration,
        wait: Wait,
    },
    Barrier(String),
    Mark(MarkPhase),
}

struct Req {
    method: Method,
    url: Template,
    headers: Vec<(String, Template)>,
    body: Body,
    status: Vec<u16>,
    save: Vec<(String, JsonPath)>,
    /// The saved values its templates read.
    needs: Vec<String>,
}

enum Body {
    None,
    Text(Template),
    Json(Value),
}

struct Conditions(Vec<(JsonPath, Matcher)>);

struct Wait {
    until: Conditions,
    fail_if: Vec<(Conditions, String)>,
    save: Vec<(String, JsonPath)>,
}

fn parse(text: &str) -> Result<Template, String> {
    Template::parse(text).map_err(|e| format!("{text:?}: {e}"))
}

fn paths(save: &BTreeMap<String, String>) -> Result<Vec<(String, JsonPath)>, String> {
    save.iter()
        .map(|(name, path)| Ok((name.clone(), JsonPath::parse(path)?)))
        .collect()
}

fn conditions(map: &BTreeMap<String, Matcher>) -> Result<Conditions, String> {
    let list = map
        .iter()
        .map(|(path, m)| Ok((JsonPath::parse(path)?, m.clone())))
        .collect::<Result<_, String>>()?;
    Ok(Conditions(list))
}

impl Req {
    fn compile(http: &HttpPhase) -> Result<Req, String> {
        let method = http.method.as_deref().unwrap_or("GET");
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("{method:?} is not an HTTP method"))?;
        let headers: Vec<(String, Template)> = http
            .headers
            .iter()
            .map(|(name, value)| Ok((name.clone(), parse(value)?)))
            .collect::<Result<_, String>>()?;
        let body = match (&http.body, &http.json) {
            (Some(text), _) => Body::Text(parse(text)?),
            (None, Some(json)) => Body::Json(json.clone()),
            (None, None) => Body::None,
        };
        let url = parse(&http.url)?;
        let mut needs = Vec::new();
        let mut read = |t: &Template| needs.extend(t.saved_names().into_iter().map(String::from));
        read(&url);
        headers.iter().for_each(|(_, t)| read(t));
        match &body {
            Body::Text(t) => read(t),
            Body::Json(json) => json_templates(json, &mut read)?,
            Body::None => {}
        }
        Ok(Req {
            method,
            url,
            headers,
            body,
            status: http.status.clone(),
            save: paths(&http.save)?,
            needs,
        })
    }

    fn render(&self, ctx: &Context<'_>) -> Result<Call, String> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| Ok((name.clone(), value.render(ctx)?)))
            .collect::<Result<_, template::TemplateError>>()
            .map_err(|e| e.to_string())?;
        let body = match &self.body {
            Body::None => None,
            Body::Text(text) => Some((
                Bytes::from(text.render(ctx).map_err(|e| e.to_string())?),
                None,
            )),
            Body::Json(json) => {
                let mut json = json.clone();
                template::render_strings(&mut json, ctx).map_err(|e| e.to_string())?;
                Some((Bytes::from(json.to_string()), Some("application/json")))
            }
        };
        Ok(Call {
            method: self.method.clone(),
            url: self.url.render(ctx).map_err(|e| e.to_string())?,
            headers,
            body,
        })
    }

    fn accepts(&self, status: u16) -> bool {
        if self.status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.status.contains(&status)
        }
    }
}

/// Calls `read` with each template among the strings of `json`.
fn json_templates(json: &Value, read: &mut impl FnMut(&Template)) -> Result<(), String> {
    match json {
        Value::String(text) => read(&parse(text)?),
        Value::Array(items) => {
            for item in items {
                json_templates(item, read)?;
            }
        }
        Value::Object(map) => {
            for item in map.values() {
                json_templates(item, read)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl Plan {
    /// Whether the job may reach `url` from this target.
    pub(crate) fn may_reach(&self, url: &str) -> Result<(), String> {
        self.access.connect(url, Some(&self.target)).map_err(|refused| {
            format!(
                "{refused}; an admin grants it with `--allow {}` or in the server's policy file",
                refused.grant
            )
        })
    }

    /// Compiles `config` for `target`.
    pub(crate) fn compile(
        config: &ScaleConfig,
        target: &Target,
        access: &Access,
    ) -> Result<Plan, String> {
        let compile_all = |phases: &[Phase], what: &str| -> Result<Vec<Step>, String> {
            phases
                .iter()
                .enumerate()
                .map(|(i, phase)| {
                    let label = phase.label(what, i + 1);
                    Step::compile(phase, &label, config.phase_timeout)
                        .map_err(|e| format!("{label}: {e}"))
                })
                .collect()
        };
        Ok(Plan {
            access: access.clone(),
            target: target.clone(),
            setup: compile_all(&config.setup, "setup phase")?,
            phases: compile_all(&config.phases, "phase")?,
            cleanup: compile_all(&config.cleanup, "cleanup phase")?,
            shared_marks: Mutex::new(HashMap::new()),
        })
    }

    /// The barriers the phases wait at.
    pub(crate) fn barriers(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .phases
            .iter()
            .filter_map(|s| match &s.action {
                Action::Barrier(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The template context of a runner with `saved` values.
    pub(crate) fn context<'a>(&'a self, saved: &'a BTreeMap<String, String>) -> Context<'a> {
        Context {
            target: &self.target,
            vars: &NO_VARS,
            saved: Some(saved),
        }
    }
}

impl Step {
    fn compile(
        phase: &Phase,
        label: &str,
        default_timeout: Option<Duration>,
    ) -> Result<Step, String> {
        let action = if let Some(http) = &phase.http {
            Action::Http(Req::compile(http)?)
        } else if let Some(wait) = &phase.wait {
            let compiled = Wait {
                until: conditions(&wait.until)?,
                fail_if: wait
                    .fail_if
                    .iter()
                    .map(|f| Ok((conditions(&f.when)?, f.error.clone())))
                    .collect::<Result<_, String>>()?,
                save: paths(&wait.save)?,
            };
            match (&wait.stream, &wait.poll) {
                (Some(stream), _) => Action::Stream {
                    stream: stream.clone(),
                    wait: compiled,
                },
                (None, Some(poll)) => Action::Poll {
                    req: Req::compile(poll)?,
                    interval: wait.interval.unwrap_or(Duration::from_secs(1)),
                    wait: compiled,
                },
                (None, None) => return Err("wait on one of `stream` or `poll`".into()),
            }
        } else if let Some(barrier) = &phase.barrier {
            Action::Barrier(barrier.clone())
        } else if let Some(mark) = &phase.mark {
            Action::Mark(mark.clone())
        } else {
            return Err("say what the phase does".into());
        };
        Ok(Step {
            label: label.to_owned(),
            timeout: phase.timeout.or(default_timeout),
            action,
        })
    }
}

impl Step {
    /// A saved value this step's request reads that `saved` lacks.
    fn unsaved<'s>(&'s self, saved: &BTreeMap<String, String>) -> Option<&'s str> {
        let needs = match &self.action {
            Action::Http(req) | Action::Poll { req, .. } => &req.needs,
            _ => return None,
        };
        needs
            .iter()
            .map(String::as_str)
            .find(|name| !saved.contains_key(*name))
    }
}

/// What one runner has saved and marked so far, and the phase it is in.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunnerState {
    pub(crate) saved: BTreeMap<String, String>,
    pub(crate) marks: BTreeMap<String, SystemTime>,
    /// The phase running, or the one that failed; `None` once all passed.
    pub(crate) phase: Option<String>,
    /// Whether its cleanup ended, passed or failed (not abandoned half-way).
    pub(crate) cleanup_ended: bool,
}

/// Shared between the runner and the step, which reads it after the runs.
pub(crate) type SharedState = Arc<Mutex<RunnerState>>;

pub(crate) fn lock(state: &Mutex<RunnerState>) -> MutexGuard<'_, RunnerState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stream subscriptions and barrier places a run takes when it starts.
#[derive(Default)]
pub(crate) struct Holdings {
    pub(crate) updates: HashMap<String, Updates<Value>>,
    pub(crate) places: HashMap<String, Participant>,
}

/// One runner.
pub(crate) struct Runner {
    pub(crate) plan: Arc<Plan>,
    pub(crate) state: SharedState,
    pub(crate) holdings: Mutex<Option<Holdings>>,
}

impl Runnable for Runner {
    async fn run(&self, ctx: &RunCtx) -> Result<(), BoxError> {
        let taken = self
            .holdings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut holdings = taken.ok_or("the runner ran twice")?;
        let result = run_steps(
            &self.plan,
            &self.plan.phases,
            &self.state,
            ctx,
            &mut holdings,
            Unsaved::Fail,
        )
        .await;
        if result.is_ok() {
            lock(&self.state).phase = None;
        }
        // Dropping the holdings here leaves every barrier not yet reached.
        drop(holdings);
        result.map_err(Into::into)
    }
}

impl Cleanable for Runner {
    async fn cleanup(&self, ctx: &RunCtx) -> Result<(), BoxError> {
        // Cleanups read the values of the run, but their own saves stay their own.
        let state = Arc::new(Mutex::new(lock(&self.state).clone()));
        let mut none = Holdings::default();
        let result = run_steps(
            &self.plan,
            &self.plan.cleanup,
            &state,
            ctx,
            &mut none,
            Unsaved::Skip,
        )
        .await;
        lock(&self.state).cleanup_ended = true;
        result.map_err(Into::into)
    }
}

/// What a step that reads a value the runner never saved does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsaved {
    /// Fail, as a template error (setup and runs: validation makes it a bug).
    Fail,
    /// Skip the step (cleanups: the run ended before the phase that saves it, so what
    /// the step would remove was never made; coder cleans up only what a run created).
    Skip,
}

/// Runs `steps` in order; the first error, prefixed with its phase's label, ends them.
pub(crate) async fn run_steps(
    plan: &Plan,
    steps: &[Step],
    state: &Mutex<RunnerState>,
    ctx: &RunCtx,
    holdings: &mut Holdings,
    unsaved: Unsaved,
) -> Result<(), String> {
    for step in steps {
        if unsaved == Unsaved::Skip
            && let Some(name) = step.unsaved(&lock(state).saved)
        {
            ctx.log(format_args!(
                "{}: skipped, the run never saved {name:?}",
                step.label
            ));
            continue;
        }
        lock(state).phase = Some(step.label.clone());
        let started = Instant::now();
        let pctx = match step.timeout {
            Some(timeout) => ctx.ctx().with_timeout(timeout),
            None => ctx.ctx().clone(),
        };
        let outcome = pctx.run(run_step(plan, step, state, &pctx, holdings)).await;
        let outcome = outcome.unwrap_or_else(|stopped| Err(stopped.to_string()));
        let took = crate::go_duration(started.elapsed());
        match outcome {
            Ok(()) => ctx.log(format_args!("{}: ok in {took}", step.label)),
            Err(e) => {
                let error = format!("{}: {e}", step.label);
                ctx.log(format_args!("{error} (after {took})"));
                return Err(error);
            }
        }
    }
    Ok(())
}

async fn run_step(
    plan: &Plan,
    step: &Step,
    state: &Mutex<RunnerState>,
    pctx: &Ctx,
    holdings: &mut Holdings,
) -> Result<(), String> {
    match &step.action {
        Action::Http(req) => {
            let (call, body) = exchange(plan, req, state).await?;
            if !req.save.is_empty() {
                let json = answer_json(&call, &body)?;
                save(state, &req.save, &json, "the answer")?;
            }
            Ok(())
        }
        Action::Stream { stream, wait } => {
            let updates = holdings
                .updates
                .get_mut(stream)
                .ok_or_else(|| format!("this runner has no updates from stream {stream:?}"))?;
            loop {
                let update = updates.next_within(pctx).await.map_err(|e| match e {
                    WaitError::Closed => format!(
                        "{e} (stream {stream:?} ended before an update met `until`: the \
                         server closed it, or sent an update that is not JSON)"
                    ),
                    _ => e.to_string(),
                })?;
                if wait.check(&update)? {
                    return save(state, &wait.save, &update, "the update");
                }
            }
        }
        Action::Poll {
            req,
            interval,
            wait,
        } => loop {
            let (call, body) = exchange(plan, req, state).await?;
            let json = answer_json(&call, &body)?;
            if wait.check(&json)? {
                save(state, &req.save, &json, "the answer")?;
                return save(state, &wait.save, &json, "the answer");
            }
            tokio::time::sleep(*interval).await;
        },
        Action::Barrier(name) => {
            let place = holdings
                .places
                .remove(name)
                .ok_or_else(|| format!("this runner has no place at barrier {name:?}"))?;
            place.wait().await;
            Ok(())
        }
        Action::Mark(mark) => {
            let at = if mark.shared {
                let mut shared = plan
                    .shared_marks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *shared
                    .entry(mark.name.clone())
                    .or_insert_with(|| mark_time(mark, SystemTime::now()))
            } else {
                mark_time(mark, SystemTime::now())
            };
            let mut state = lock(state);
            state.marks.insert(mark.name.clone(), at);
            for (name, format) in &mark.save {
                state.saved.insert(name.clone(), format_time(at, *format));
            }
            Ok(())
        }
    }
}

/// Renders and sends `req`; the call and its answer, whose status `req` accepts.
async fn exchange(
    plan: &Plan,
    req: &Req,
    state: &Mutex<RunnerState>,
) -> Result<(Call, Bytes), String> {
    let call = render(plan, req, state)?;
    let (status, body) = call.send().await?;
    if !req.accepts(status) {
        return Err(format!(
            "{} {}: status {status}{}",
            call.method,
            call.url,
            body_hint(&body)
        ));
    }
    Ok((call, body))
}

fn render(plan: &Plan, req: &Req, state: &Mutex<RunnerState>) -> Result<Call, String> {
    let saved = lock(state).saved.clone();
    let call = req.render(&plan.context(&saved))?;
    plan.may_reach(&call.url)?;
    Ok(call)
}

/// How many characters of an answer or update an error quotes.
const QUOTED_CHARS: usize = 200;

/// `text` as an error quotes it: whole if short, else its first [`QUOTED_CHARS`]
/// characters and its size, so that a large document does not bury the message.
fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len())),
    }
}

/// The start of an unexpected answer, which usually says what is wrong.
fn body_hint(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(body);
    format!(" ({})", excerpt(text.trim()))
}

fn answer_json(call: &Call, body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "{} {}: the answer is not JSON ({e}){}",
            call.method,
            call.url,
            body_hint(body)
        )
    })
}

fn save(
    state: &Mutex<RunnerState>,
    save: &[(String, JsonPath)],
    json: &Value,
    what: &str,
) -> Result<(), String> {
    let mut state = lock(state);
    for (name, path) in save {
        let value = path.get(json).ok_or_else(|| {
            let seen = json.to_string();
            format!(
                "cannot save {name:?}: {what} has nothing at {path}: {}",
                excerpt(&seen)
            )
        })?;
        state.saved.insert(name.clone(), jsonpath::text(value));
    }
    Ok(())
}

impl Conditions {
    fn hold(&self, json: &Value) -> bool {
        self.0
            .iter()
            .all(|(path, matcher)| path.get(json).is_some_and(|v| matcher.matches(v)))
    }
}

impl Wait {
    /// Whether `update` ends the wait; an error if a `fail_if` holds for it.
    fn check(&self, update: &Value) -> Result<bool, String> {
        for (when, error) in &self.fail_if {
            if when.hold(update) {
                let seen = update.to_string();
                return Err(format!("{error} (update: {})", excerpt(&seen)));
            }
        }
        Ok(self.until.hold(update))
    }
}

impl Matcher {
    /// Whether `value` satisfies this matcher.
    pub(crate) fn matches(&self, value: &Value) -> bool {
        match self {
            Matcher::Equals(want) => same(want, value),
            Matcher::Not { not } => !same(not, value),
            Matcher::In { any } => any.iter().any(|want| same(want, value)),
        }
    }
}

/// Equal, with scalars compared as text (`201` is `"201"`).
fn same(a: &Value, b: &Value) -> bool {
    let scalar = |v: &Value| !(v.is_array() || v.is_object());
    if scalar(a) && scalar(b) {
        jsonpath::text(a) == jsonpath::text(b)
    } else {
        a == b
    }
}

/// Now, or `delay` from now, rounded to the nearest multiple of `round` (halves away
/// from zero, as Go's `Time.Round`).
pub(crate) fn mark_time(mark: &MarkPhase, now: SystemTime) -> SystemTime {
    let at = now + mark.delay.unwrap_or_default();
    let Some(round) = mark.round.filter(|r| !r.is_zero()) else {
        return at;
    };
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let unit = round.as_nanos();
    let rounded = (since + unit / 2) / unit * unit;
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

/// A mark as a saved value.
pub(crate) fn format_time(at: SystemTime, format: TimeFormat) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    match format {
        TimeFormat::Rfc3339 => humantime::format_rfc3339_millis(at).to_string(),
        TimeFormat::UnixMs => since.as_millis().to_string(),
        TimeFormat::Cron => {
            let secs = since.as_secs() % 86_400;
            format!("CRON_TZ=UTC {} {} * * *", (secs / 60) % 60, secs / 3600)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn marks_round_like_go_and_format_three_ways() {
        let mark = |delay: u64, round: Option<u64>| MarkPhase {
            name: "m".into(),
            delay: Some(Duration::from_secs(delay)),
            round: round.map(Duration::from_secs),
            shared: false,
            save: BTreeMap::new(),
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_000_250); // 01:46:40.250
        let at = mark_time(&mark(120, Some(60)), now);
        assert_eq!(
            format_time(at, TimeFormat::Rfc3339),
            "2001-09-09T01:49:00.000Z"
        );
        assert_eq!(format_time(at, TimeFormat::Cron), "CRON_TZ=UTC 49 1 * * *");
        let at = mark_time(&mark(19, Some(60)), now); // 01:46:59.25 rounds up
        assert_eq!(format_time(at, TimeFormat::Cron), "CRON_TZ=UTC 47 1 * * *");
        let at = mark_time(&mark(2, None), now);
        assert_eq!(format_time(at, TimeFormat::UnixMs), "1000000002250");
    }

    #[test]
    fn matchers_compare_scalars_as_text() {
        let check = |m: Matcher, v: Value, want: bool| assert_eq!(m.matches(&v), want, "{m:?} {v}");
        check(Matcher::Equals(json!(201)), json!("201"), true);
        check(Matcher::Equals(json!("start")), json!("stop"), false);
        check(
            Matcher::Not {
                not: json!("start"),
            },
            json!("stop"),
            true,
        );
        check(
            Matcher::Not {
                not: json!("start"),
            },
            json!("start"),
            false,
        );
        check(
            Matcher::In {
                any: vec![json!("failed"), json!("canceled")],
            },
            json!("canceled"),
            true,
        );
    }

    #[test]
    fn a_fail_if_wins_over_until_and_names_the_update() {
        let path = |p: &str| JsonPath::parse(p).unwrap();
        let wait = Wait {
            until: Conditions(vec![(
                path("$.status"),
                Matcher::Equals(json!("succeeded")),
            )]),
            fail_if: vec![(
                Conditions(vec![(
                    path("$.transition"),
                    Matcher::Not {
                        not: json!("start"),
                    },
                )]),
                "unexpected transition".into(),
            )],
            save: Vec::new(),
        };
        assert_eq!(
            wait.check(&json!({"transition": "start", "status": "running"})),
            Ok(false)
        );
        assert_eq!(
            wait.check(&json!({"transition": "start", "status": "succeeded"})),
            Ok(true)
        );
        let err = wait
            .check(&json!({"transition": "stop", "status": "succeeded"}))
            .unwrap_err();
        assert!(err.starts_with("unexpected transition (update: {"), "{err}");
        // A path that is absent never holds, not even for `not`.
        assert_eq!(wait.check(&json!({"status": "running"})), Ok(false));
    }

    #[test]
    fn errors_quote_a_long_update_or_answer_by_its_start_and_size() {
        assert_eq!(excerpt("{\"a\":1}"), "{\"a\":1}");
        let exact = "é".repeat(QUOTED_CHARS);
        assert_eq!(excerpt(&exact), exact.as_str());
        // Cut at a character, never inside one; the size is the whole text's, in bytes.
        let long = format!("{exact}ü and more");
        assert_eq!(excerpt(&long), format!("{exact}… ({} bytes)", long.len()));

        let big = json!({"transition": "stop", "log": "x".repeat(5000)});
        let size = big.to_string().len();
        let path = |p: &str| JsonPath::parse(p).unwrap();
        let wait = Wait {
            until: Conditions(Vec::new()),
            fail_if: vec![(
                Conditions(vec![(path("$.transition"), Matcher::Equals(json!("stop")))]),
                "stopped".into(),
            )],
            save: Vec::new(),
        };
        let quoted = |err: &str, start: &str| {
            assert!(err.starts_with(start), "{err}");
            assert!(err.contains(&format!("… ({size} bytes)")), "{err}");
            assert!(err.len() < start.len() + 300, "{err}");
        };
        quoted(&wait.check(&big).unwrap_err(), "stopped (update: {");
        let state = Mutex::new(RunnerState::default());
        let missing = [("id".to_owned(), path("$.id"))];
        let err = save(&state, &missing, &big, "the answer").unwrap_err();
        quoted(
            &err,
            "cannot save \"id\": the answer has nothing at $.id: {",
        );
    }
}
