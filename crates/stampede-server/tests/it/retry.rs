//! `POST /v1/jobs/{id}/retry`: an ended or paused job submitted again as a new job.

use std::time::Duration;

use super::{Fixture, QUICK, SLOW, on_every_backend};

on_every_backend!(
    a_completed_job_retried_runs_again_as_a_new_job,
    a_running_job_cannot_be_retried_but_a_paused_or_cancelled_one_can,
);

async fn a_completed_job_retried_runs_again_as_a_new_job(f: &Fixture) {
    let created = f.post("/v1/jobs", QUICK).await;
    let old = created.body["job_id"].as_u64().unwrap();
    f.wait_for(old, "completed").await;

    let retried = f.post(&format!("/v1/jobs/{old}/retry"), "").await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    let new = retried.body["job_id"].as_u64().unwrap();
    assert_ne!(new, old);
    assert_eq!(retried.body["name"], "quick");
    assert_eq!(retried.body["created"], true);
    assert_eq!(retried.body["status_url"], format!("/v1/jobs/{new}"));
    let done = f.wait_for(new, "completed").await;
    assert_eq!(done["runs"][0]["reports"][0]["success"], true);

    // Same name, tags and project; the retrying token's requestor.
    let again = f.post(&format!("/v1/jobs/{old}/retry"), "").await;
    assert_eq!(again.status, 201);
    let list = f.get("/v1/jobs?tag=smoke").await.body;
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    let requestors: Vec<_> = jobs
        .iter()
        .map(|j| j["requestor"].as_str().unwrap())
        .collect();
    assert_eq!(requestors, ["tests", "tests", "tests"]);
    assert!(jobs.iter().all(|j| j["name"] == "quick"));

    // An Idempotency-Key makes a resent retry safe.
    let key = [("idempotency-key", "retry-1")];
    let path = format!("/v1/jobs/{old}/retry");
    let first = f.send("POST", &path, "", &key).await;
    let again = f.send("POST", &path, "", &key).await;
    assert_eq!((first.status, again.status), (201, 200));
    assert_eq!(first.body["job_id"], again.body["job_id"]);
    assert_eq!(again.body["created"], false);
    assert_eq!(
        f.get("/v1/jobs").await.body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Only the job's project may retry it.
    let missing = f.post("/v1/jobs/999/retry", "").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
}

async fn a_running_job_cannot_be_retried_but_a_paused_or_cancelled_one_can(f: &Fixture) {
    let id = f.submit(SLOW).await;
    f.wait_for(id, "started").await;
    let running = f.post(&format!("/v1/jobs/{id}/retry"), "").await;
    assert_eq!(running.status, 409, "{}", running.body);
    let message = running.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("job {id} is started")) && message.contains("cancel it first"),
        "{message}"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{id}/pause"), "").await.status,
        202
    );
    f.wait_for(id, "paused").await;
    let from_paused = f.post(&format!("/v1/jobs/{id}/retry"), "").await;
    assert_eq!(from_paused.status, 201, "{}", from_paused.body);
    let new = from_paused.body["job_id"].as_u64().unwrap();
    f.wait_for(new, "started").await;
    assert_eq!(
        f.post(&format!("/v1/jobs/{new}/cancel"), "").await.status,
        202
    );
    f.wait_for(new, "cancelled").await;
    // The paused job stays paused: the retry is a new job, not a resume.
    assert_eq!(
        f.get(&format!("/v1/jobs/{id}")).await.body["state"],
        "paused"
    );

    let from_cancelled = f.post(&format!("/v1/jobs/{new}/retry"), "").await;
    assert_eq!(from_cancelled.status, 201, "{}", from_cancelled.body);
    let newest = from_cancelled.body["job_id"].as_u64().unwrap();
    let done = f.wait_for(newest, "completed").await;
    assert_eq!(done["runs"][0]["tests"][0]["targets"][0]["step"], "after");
}
