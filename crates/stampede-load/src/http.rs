//! `http`: one request with checks, per target. It goes through the load step's engine (one
//! virtual user, one iteration), so a single request and a load test share one execution
//! path; the request's failure kind (`connect`, `timeout`, `status 503`, `check`) is the
//! target's error.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use stampede_job::{Capability, Problem, Step, StepCtx, StepError, StepOutcome, Use, duration};

use crate::config::LoadStep;
use crate::run::{RunControl, run_load};

/// Sends one HTTP request and checks the answer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStepConfig {
    /// Absolute URL (a template, e.g. `{{ target.url }}/health`).
    pub url: String,
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses (default 200-399).
    #[serde(default)]
    pub status: Vec<u16>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Timeout (default 60s).
    #[serde(default, deserialize_with = "duration::option")]
    #[schemars(with = "Option<stampede_job::DurationText>")]
    pub timeout: Option<Duration>,
    /// Use HTTP/2.
    #[serde(default)]
    pub http2: bool,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub insecure: bool,
}

impl HttpStepConfig {
    /// The one-request load step this is.
    pub fn as_load(&self) -> LoadStep {
        LoadStep {
            url: Some(self.url.clone()),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            status: self.status.clone(),
            body_contains: self.body_contains.clone(),
            vus: Some(1),
            iterations: Some(1),
            duration: Some(
                self.timeout.unwrap_or(Duration::from_secs(60)) + Duration::from_secs(1),
            ),
            connections: Some(1),
            threads: Some(1),
            http2: self.http2,
            insecure: self.insecure,
            timeout: self.timeout,
            ..LoadStep::default()
        }
    }
}

/// The `http` step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

impl Step for Http {
    type Config = HttpStepConfig;
    const KEY: &'static str = "http";
    const SUMMARY: &'static str = "One HTTP request with checks.";
    const NEEDS: &'static [Capability] = &[Capability::Network];

    fn problems(&self, config: &HttpStepConfig, at: &str) -> Vec<Problem> {
        let found = config.as_load().settings().err().unwrap_or_default();
        Problem::all_under(at, &found)
    }

    fn uses(&self, config: &HttpStepConfig) -> Vec<Use> {
        vec![Use::connect("url", &config.url)]
    }

    async fn run(
        &self,
        config: &HttpStepConfig,
        ctx: &StepCtx<'_>,
    ) -> Result<StepOutcome, StepError> {
        run(config, ctx).await
    }
}

async fn run(config: &HttpStepConfig, ctx: &StepCtx<'_>) -> Result<StepOutcome, StepError> {
    let settings = match config.as_load().settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(StepOutcome::Failed(problems.join("; "))),
    };
    // A cancel abandons the request at once.
    let control = RunControl {
        stop: ctx.cancel.child_token(),
        abort: ctx.cancel.child_token(),
    };
    let result = run_load(&settings, &control, &mut ()).await;
    let result =
        result.map_err(|e| StepError::Failed(format!("http step {:?}: {e}", ctx.label)))?;
    let summary = result.summary();
    let method = config.method.as_deref().unwrap_or("GET");
    if summary.requests.ok == 1 {
        return Ok(StepOutcome::Passed(BTreeMap::from([(
            "latency_ms".to_string(),
            serde_json::json!(summary.latency_ms.response.max),
        )])));
    }
    let why = if summary.failures.is_empty() {
        "no answer (cancelled)".to_string()
    } else {
        summary
            .failures
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(StepOutcome::Failed(format!(
        "{method} {}: {why}",
        config.url
    )))
}
