//! The job server's REST client (`stampede-server`'s `/v1` API), with k6 cloudapi's habits:
//! settings consolidated in layers ([`ClientConfig::consolidate`]), every call retried up to
//! 3 times, 500 ms apart, on network errors, 5xx and 429, one `Idempotency-Key` per logical
//! POST so a retried submit makes one job, and errors that say what the server said
//! ([`ClientError`]).
//!
//! The bodies are `stampede_api`'s, re-exported: [`JobCreated`], [`JobList`], [`JobStatus`],
//! [`EventPage`], [`VersionInfo`]. The config file (`stampede login` writes it) is found by
//! [`config_path`] and read and written by [`load_file`] and [`save_file`].
//!
//! ```no_run
//! # async fn example() -> Result<(), stampede_client::ClientError> {
//! use stampede_client::{Client, ClientConfig, PartialConfig, config_path, load_file};
//!
//! let env = |name: &str| std::env::var(name).ok();
//! let file = match config_path(&env) {
//!     Some(path) => load_file(&path)?,
//!     None => None,
//! };
//! let config = ClientConfig::consolidate(file, None, &env, PartialConfig::default())?;
//! let client = Client::new(config)?;
//! let created = client.submit("name: hello\ntests: []\n").await?;
//! let status = client.status(created.job_id).await?;
//! println!("job {} is {:?}", status.job_id, status.state);
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod transport;

use hyper::Method;
use serde::de::DeserializeOwned;

pub use config::{
    CONFIG_ENV, ClientConfig, ConfigError, DEFAULT_SERVER, Layer, PartialConfig, SERVER_ENV,
    TIMEOUT_ENV, TOKEN_ENV, config_path, load_file, save_file,
};
pub use error::ClientError;
pub use stampede_api::job::JobStatus;
pub use stampede_api::server::{ApiEvent, EventPage, JobCreated, JobEntry, JobList, VersionInfo};
pub use stampede_api::testrun::{
    CreateTestRun, LoggedIn, MetricsAccepted, MetricsPush, OptionsValid, TestFinished,
    TestProgress, TestRun, TestRunCreated, TokenValidity,
};
use stampede_api::testrun::{Login, ValidateOptions, ValidateToken};

use transport::{Call, Transport};

/// The content type of a submitted descriptor (JSON is YAML too).
const DESCRIPTOR_TYPE: &str = "application/yaml";

/// A client of one job server. Cheap to clone; each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    transport: Transport,
}

impl Client {
    /// A client with these settings; fails if one of them cannot be used.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let transport = Transport::new(&config)?;
        Ok(Client { config, transport })
    }

    /// Its settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `GET /v1/version`: the server's version and id.
    pub async fn version(&self) -> Result<VersionInfo, ClientError> {
        self.json(get("/v1/version".into())).await
    }

    /// `POST /v1/jobs`: submits a descriptor (YAML or JSON, native or ConTest); the server
    /// records the token's user (or the token's name) as its requestor. Retrying is safe:
    /// the attempts share one idempotency key, so the server makes one job (`created` is
    /// false on a replay).
    pub async fn submit(&self, descriptor: &str) -> Result<JobCreated, ClientError> {
        self.json(Call {
            method: Method::POST,
            path: "/v1/jobs".to_string(),
            body: Some((descriptor, DESCRIPTOR_TYPE)),
        })
        .await
    }

    /// `GET /v1/jobs`: the jobs in any of `states` carrying all of `tags`, by id, after job
    /// `after`, at most `limit` (the server's default and most: 1000).
    pub async fn list(
        &self,
        states: &[String],
        tags: &[String],
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<JobList, ClientError> {
        let query = query(
            [
                (!states.is_empty()).then(|| ("state", states.join(","))),
                (!tags.is_empty()).then(|| ("tag", tags.join(","))),
                after.map(|a| ("after", a.to_string())),
                limit.map(|l| ("limit", l.to_string())),
            ]
            .into_iter()
            .flatten(),
        );
        self.json(get(format!("/v1/jobs{query}"))).await
    }

    /// `GET /v1/jobs/{id}`: the job's status, rebuilt from its events.
    pub async fn status(&self, id: u64) -> Result<JobStatus, ClientError> {
        self.json(get(format!("/v1/jobs/{id}"))).await
    }

    /// `GET /v1/jobs/{id}/events`: its events after sequence number `after`, at most
    /// `limit`; pass the page's `next_after` to read on.
    pub async fn events(
        &self,
        id: u64,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<EventPage, ClientError> {
        let query = query(
            [
                after.map(|a| ("after", a.to_string())),
                limit.map(|l| ("limit", l.to_string())),
            ]
            .into_iter()
            .flatten(),
        );
        self.json(get(format!("/v1/jobs/{id}/events{query}"))).await
    }

    /// `POST /v1/jobs/{id}/cancel`: asks the server running the job to cancel it.
    pub async fn cancel(&self, id: u64) -> Result<(), ClientError> {
        self.control(id, "cancel").await
    }

    /// `POST /v1/jobs/{id}/pause`: asks the server running the job to pause it.
    pub async fn pause(&self, id: u64) -> Result<(), ClientError> {
        self.control(id, "pause").await
    }

    /// `POST /v1/jobs/{id}/resume`: resumes a paused job.
    pub async fn resume(&self, id: u64) -> Result<(), ClientError> {
        self.control(id, "resume").await
    }

    /// `POST /v1/jobs/{id}/retry`: submits the job's descriptor again as a new job. A server
    /// without this endpoint answers 404, which comes back as [`ClientError::Api`].
    pub async fn retry(&self, id: u64) -> Result<JobCreated, ClientError> {
        self.json(post(format!("/v1/jobs/{id}/retry"))).await
    }

    /// `POST /v1/tests`: announces a test run executed here (`stampede run --out cloud`).
    pub async fn create_test_run(
        &self,
        run: &CreateTestRun,
    ) -> Result<TestRunCreated, ClientError> {
        let body = to_json(run);
        let created: TestRunCreated = self.json(post_json("/v1/tests".into(), &body)).await?;
        if created.reference_id.is_empty() {
            return Err(ClientError::Decode {
                what: "POST /v1/tests".into(),
                error: "the answer has no reference_id".into(),
            });
        }
        Ok(created)
    }

    /// `POST /v1/tests/{ref}/metrics`: snapshots in order; `push.first` makes a retry safe.
    pub async fn push_metrics(
        &self,
        reference: &str,
        push: &MetricsPush,
    ) -> Result<MetricsAccepted, ClientError> {
        let body = to_json(push);
        self.json(post_json(format!("/v1/tests/{reference}/metrics"), &body))
            .await
    }

    /// `POST /v1/tests/{ref}`: the run ended (k6's `TestFinished`).
    pub async fn finish_test_run(
        &self,
        reference: &str,
        finished: &TestFinished,
    ) -> Result<(), ClientError> {
        let body = to_json(finished);
        self.transport
            .send(&post_json(format!("/v1/tests/{reference}"), &body))
            .await
            .map(drop)
    }

    /// `GET /v1/tests/{ref}`: a run executed elsewhere, as the server holds it.
    pub async fn test_run(&self, reference: &str) -> Result<TestRun, ClientError> {
        self.json(get(format!("/v1/tests/{reference}"))).await
    }

    /// `GET /v1/test-progress/{ref}`: k6's progress of a test run or a job.
    pub async fn test_progress(&self, reference: &str) -> Result<TestProgress, ClientError> {
        self.json(get(format!("/v1/test-progress/{reference}")))
            .await
    }

    /// `POST /v1/tests/{ref}/stop`: stops a test run (a job the server runs is cancelled).
    pub async fn stop_test_run(&self, reference: &str) -> Result<(), ClientError> {
        self.transport
            .send(&post(format!("/v1/tests/{reference}/stop")))
            .await
            .map(drop)
    }

    /// `POST /v1/validate-options`: checks a descriptor (as JSON) without submitting it.
    pub async fn validate_options(
        &self,
        options: serde_json::Value,
    ) -> Result<OptionsValid, ClientError> {
        let body = to_json(&ValidateOptions { options });
        self.json(post_json("/v1/validate-options".into(), &body))
            .await
    }

    /// `POST /v1/validate-token`: whether `token` is valid (needs none itself).
    pub async fn validate_token(&self, token: &str) -> Result<TokenValidity, ClientError> {
        let body = to_json(&ValidateToken {
            token: token.to_string(),
        });
        self.json(post_json("/v1/validate-token".into(), &body))
            .await
    }

    /// `POST /v1/login`: a user's name and password for a new token (needs no token).
    pub async fn login(&self, user: &str, password: &str) -> Result<LoggedIn, ClientError> {
        let body = to_json(&Login {
            email: user.to_string(),
            password: password.to_string(),
        });
        self.json(post_json("/v1/login".into(), &body)).await
    }

    async fn control(&self, id: u64, action: &str) -> Result<(), ClientError> {
        self.transport
            .send(&post(format!("/v1/jobs/{id}/{action}")))
            .await
            .map(drop)
    }

    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, ClientError> {
        let body = self.transport.send(&call).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            what: call.describe(),
            error: e.to_string(),
        })
    }
}

fn get(path: String) -> Call<'static> {
    Call {
        method: Method::GET,
        path,
        body: None,
    }
}

fn post_json(path: String, body: &str) -> Call<'_> {
    Call {
        method: Method::POST,
        path,
        body: Some((body, "application/json")),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API bodies serialize")
}

fn post(path: String) -> Call<'static> {
    Call {
        method: Method::POST,
        path,
        body: None,
    }
}

/// `?k=v&...`, form-encoded, or nothing.
fn query(pairs: impl IntoIterator<Item = (&'static str, String)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in pairs {
        serializer.append_pair(key, &value);
        any = true;
    }
    if any {
        format!("?{}", serializer.finish())
    } else {
        String::new()
    }
}
