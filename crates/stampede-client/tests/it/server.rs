//! Round trips against the real job server, in-process on a loopback port over SQLite.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_api::job::JobState;
use stampede_client::{Client, ClientConfig, ClientError};
use stampede_server::{Config, Server, create_token};
use stampede_store::EventStore;

use crate::fake::Proxy;

const QUICK: &str = "name: quick\ntags: [smoke]\ntests:\n  - name: t\n    targets: { synthetic: { count: 2 } }\n    steps:\n      - name: hi\n        echo: { text: 'hi {{ target.id }}' }\n";

const SLOW: &str = "name: slow\ntests:\n  - name: t\n    steps:\n      - name: nap\n        sleep: { duration: 1500ms }\n      - name: after\n        echo: { text: done }\n";

struct Fixture {
    _store: Arc<dyn EventStore>,
    server: Server,
    token: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("server.db").display());
        let store = stampede_store::open(&url).await.unwrap();
        let token = create_token(&store, "t", "default").await.unwrap();
        let server = Server::start(
            Config {
                addr: "127.0.0.1:0".parse().unwrap(),
                server_id: "test-server".into(),
                request_timeout: Duration::from_secs(10),
                instance_tag: None,
                registry: stampede_job::Registry::new()
                    .with(stampede_job::steps::Echo)
                    .with(stampede_job::steps::Sleep),
                clock: stampede_core::SystemClock::shared(),
                policy: stampede_job::policy::Policy::default(),
                jobs_dir: Some(
                    std::env::temp_dir().join(format!("stampede-test-jobs-{}", std::process::id())),
                ),
                http: stampede_server::HttpLimits::default(),
                login: stampede_server::LoginLimits::default(),
            },
            store.clone(),
        )
        .await
        .unwrap();
        Fixture {
            _store: store,
            server,
            token,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    fn client(&self) -> Client {
        client(&self.url(), Some(&self.token))
    }

    /// Polls the job's status until it is `state`.
    async fn wait_for(&self, id: u64, state: JobState) -> stampede_client::JobStatus {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = client.status(id).await.unwrap();
            if status.state == state {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never became {state:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn client(url: &str, token: Option<&str>) -> Client {
    Client::new(ClientConfig {
        server: url.to_string(),
        token: token.map(str::to_string),
        timeout: Duration::from_secs(10),
        attempts: 3,
        retry_interval: Duration::from_millis(100),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_status_list_and_events_round_trip() {
    let f = Fixture::new().await;
    let client = f.client();
    let version = client.version().await.unwrap();
    assert_eq!(
        (version.api.as_str(), version.server_id.as_str()),
        ("v1", "test-server")
    );

    let created = client.submit(QUICK).await.unwrap();
    assert!(created.created);
    assert_eq!(created.name, "quick");
    assert_eq!(created.status_url, format!("/v1/jobs/{}", created.job_id));
    let status = f.wait_for(created.job_id, JobState::Completed).await;
    assert_eq!(status.runs[0].tests[0].targets.len(), 2);

    let list = client
        .list(&["completed".into()], &["smoke".into()], None, None)
        .await
        .unwrap();
    assert_eq!(list.jobs.len(), 1);
    assert_eq!(list.jobs[0].job_id, created.job_id);
    assert_eq!(list.jobs[0].requestor, "t", "the token's name");
    let none = client
        .list(&["failed".into()], &[], None, None)
        .await
        .unwrap();
    assert!(none.jobs.is_empty());
    let after = client
        .list(&[], &[], Some(created.job_id), Some(10))
        .await
        .unwrap();
    assert!(after.jobs.is_empty());

    // Events page by sequence number, nothing lost between pages.
    let all = client.events(created.job_id, None, None).await.unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = client.events(created.job_id, after, Some(3)).await.unwrap();
        if page.events.is_empty() {
            break;
        }
        after = page.next_after;
        paged.extend(page.events);
    }
    let names = |events: &[stampede_api::server::ApiEvent]| {
        events
            .iter()
            .map(|e| (e.seq, e.name.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&paged), names(&all.events));
    assert_eq!(all.events[0].name, "JobStateStarted");
    assert_eq!(all.events.last().unwrap().name, "JobStateCompleted");

    // A retry is a new job with the same descriptor.
    let again = client.retry(created.job_id).await.unwrap();
    assert!(again.created);
    assert_ne!(again.job_id, created.job_id);
    assert_eq!(again.name, "quick");
    f.wait_for(again.job_id, JobState::Completed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel_round_trip() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = client.submit(SLOW).await.unwrap().job_id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.pause(id).await.unwrap();
    f.wait_for(id, JobState::Paused).await;
    let error = client.cancel(id).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Api { status: 409, message, .. } if message.contains("not running")),
        "{error:?}"
    );
    client.resume(id).await.unwrap();
    f.wait_for(id, JobState::Completed).await;

    let id = client.submit(SLOW).await.unwrap().job_id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.cancel(id).await.unwrap();
    f.wait_for(id, JobState::Cancelled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_a_401_tried_once() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(f.server.addr(), 0).await;
    for token in [Some("wrong"), None] {
        let before = proxy.connections();
        let error = client(&proxy.url(), token)
            .list(&[], &[], None, None)
            .await
            .unwrap_err();
        let ClientError::Api {
            status, message, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*status, 401);
        assert!(message.contains("token"), "{message}");
        assert_eq!(proxy.connections() - before, 1, "a 401 is not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_whose_answer_was_lost_is_retried_into_the_same_job() {
    let f = Fixture::new().await;
    // The first attempt reaches the server, which makes the job, but its answer is lost.
    let proxy = Proxy::start(f.server.addr(), 1).await;
    let created = client(&proxy.url(), Some(&f.token))
        .submit(QUICK)
        .await
        .unwrap();
    assert_eq!(proxy.connections(), 2);
    assert!(
        !created.created,
        "the retry replays the first attempt's job"
    );
    let jobs = f.client().list(&[], &[], None, None).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].job_id, created.job_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_come_back_as_api_errors() {
    let f = Fixture::new().await;
    let client = f.client();
    let cases = [
        (
            client.status(999).await.unwrap_err(),
            404,
            "there is no job 999",
        ),
        (
            client.retry(999).await.unwrap_err(),
            404,
            "there is no job 999",
        ),
        (
            client
                .list(&["sleeping".into()], &[], None, None)
                .await
                .unwrap_err(),
            400,
            "not a job state",
        ),
        (
            client.submit("name: j\ntests: []\n").await.unwrap_err(),
            422,
            "(422) the descriptor is invalid\n  problems: ",
        ),
        (
            client.events(1, None, Some(0)).await.unwrap_err(),
            404,
            "there is no job 1",
        ),
    ];
    for (error, status, text) in cases {
        assert!(
            matches!(error, ClientError::Api { status: s, .. } if s == status),
            "{error:?}"
        );
        assert!(error.to_string().contains(text), "{text:?} not in {error}");
    }
}
