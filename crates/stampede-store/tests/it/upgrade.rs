//! Stores written before a migration keep their data: a job stored at schema version 2
//! (before projects) reads back in the default project once `open` has migrated the store.

use sqlx::migrate::Migrator;
use sqlx::{Connection as _, PgConnection, SqliteConnection};
use stampede_store::{DEFAULT_PROJECT, JobQuery, NewJob};

use crate::fixture::{create_schema, drop_schema, postgres_url, with_search_path};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The last schema version without projects.
const BEFORE_PROJECTS: i64 = 2;

/// Inserts a job as a version-2 store did.
const OLD_JOB: &str = "INSERT INTO jobs (name, requestor, server_id, requested_at_us, \
                       descriptor, extended_descriptor, state) \
                       VALUES ('old', 'me', 's', 1, '{}', '{}', 'completed')";

/// Opens the version-2 store at `url` holding one job and checks what the upgraded one
/// holds.
async fn check_upgrade(url: &str) {
    let store = stampede_store::open(url)
        .await
        .expect("open upgrades the store");
    let job = store
        .job(1)
        .await
        .expect("job")
        .expect("the old job is kept");
    assert_eq!(
        (job.name.as_str(), job.project.as_str()),
        ("old", DEFAULT_PROJECT)
    );
    let query = JobQuery {
        project: Some(DEFAULT_PROJECT.to_owned()),
        ..JobQuery::default()
    };
    let listed = store.list_jobs(&query).await.expect("list_jobs");
    assert_eq!(listed, [job], "listing the default project");
    let (id, created) = store
        .create_job_once("new", NewJob::default())
        .await
        .expect("create_job_once");
    assert_eq!((id, created), (2, true), "a job created after the upgrade");
    assert_eq!(store.list_tokens().await.expect("list_tokens"), []);
}

#[tokio::test]
async fn sqlite_jobs_before_projects_join_the_default_project() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let mut old = SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .expect("connect");
    SQLITE_MIGRATIONS
        .run_to(BEFORE_PROJECTS, &mut old)
        .await
        .expect("migrating to version 2");
    sqlx::query(OLD_JOB)
        .execute(&mut old)
        .await
        .expect("insert");
    old.close().await.expect("close");
    check_upgrade(&url).await;
}

#[tokio::test]
async fn postgres_jobs_before_projects_join_the_default_project() {
    let Some(server) = postgres_url() else { return };
    let schema = create_schema(&server).await;
    let url = with_search_path(&server, &schema);
    let mut old = PgConnection::connect(&url).await.expect("connect");
    POSTGRES_MIGRATIONS
        .run_to(BEFORE_PROJECTS, &mut old)
        .await
        .expect("migrating to version 2");
    sqlx::query(OLD_JOB)
        .execute(&mut old)
        .await
        .expect("insert");
    old.close().await.expect("close");
    check_upgrade(&url).await;
    drop_schema(&server, &schema).await;
}
