//! What `open` does with URLs: the errors users see for bad ones, and the SQLite file it
//! creates (WAL mode, reusable).

use sqlx::{Connection as _, SqliteConnection};
use stampede_store::{EventQuery, JobQuery, NewEvent, NewJob, StoreError};

use crate::fixture::{create_schema, drop_schema, postgres_url, with_search_path};

async fn open_error(url: &str) -> StoreError {
    match stampede_store::open(url).await {
        Ok(_) => panic!("{url} opened"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn bad_urls_say_what_to_write() {
    for url in [
        "mysql://root@localhost/db",
        "stampede.db",
        "sqlite://",
        "sqlite::memory:",
    ] {
        let error = open_error(url).await;
        assert!(matches!(error, StoreError::Url { .. }), "{url}: {error}");
        let message = error.to_string();
        assert!(
            message.contains("sqlite://PATH") && message.contains("memory:"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn sqlite_creates_a_wal_file_and_reopens_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = stampede_store::open(&url)
        .await
        .expect("open creates the file");
    store
        .create_job(NewJob {
            name: "first".into(),
            ..NewJob::default()
        })
        .await
        .expect("create_job");
    assert!(path.exists(), "{} was not created", path.display());

    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("PRAGMA");
    assert_eq!(mode, "wal");
    conn.close().await.expect("close");

    drop(store);
    let again = stampede_store::open(&url).await.expect("reopen");
    let jobs = again
        .list_jobs(&JobQuery::default())
        .await
        .expect("list_jobs");
    assert_eq!(jobs.len(), 1, "migrations ran twice or the job was lost");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_says_what_to_check() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("missing/store.db").display());
    let error = open_error(&url).await;
    assert!(matches!(error, StoreError::Connect { .. }), "{error}");
    assert!(error.to_string().contains("directory exists"), "{error}");
}

#[tokio::test]
async fn unreachable_postgres_says_what_to_check_and_hides_the_password() {
    let error =
        open_error("postgres://stampede:hunter2@127.0.0.1:1/nowhere?connect_timeout=2").await;
    assert!(matches!(error, StoreError::Connect { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("PostgreSQL is running") && !message.contains("hunter2"),
        "{message}"
    );
}

#[tokio::test]
async fn postgres_schemas_hold_separate_stores() {
    let Some(server) = postgres_url() else { return };
    let (one, two) = (create_schema(&server).await, create_schema(&server).await);
    let a = stampede_store::open(&with_search_path(&server, &one))
        .await
        .expect("open");
    let b = stampede_store::open(&with_search_path(&server, &two))
        .await
        .expect("open");
    let id = a.create_job(NewJob::default()).await.expect("create_job");
    assert_eq!(b.job(id).await.expect("job"), None, "schemas share jobs");
    drop((a, b));
    drop_schema(&server, &one).await;
    drop_schema(&server, &two).await;
}

/// SQLite reads parse pages on tokio's blocking pool: that must work on the current-thread
/// runtimes the engine uses, not only on a multi-threaded one.
#[tokio::test]
async fn sqlite_reads_pages_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("pages.db").display());
    let store = stampede_store::open(&url).await.expect("open");
    let job_id = store
        .create_job(NewJob::default())
        .await
        .expect("create_job");
    let events: Vec<NewEvent> = (0..25_000)
        .map(|i| NewEvent {
            job_id,
            name: format!("e{}", i % 7),
            ..NewEvent::default()
        })
        .collect();
    let seqs = store.append(&events).await.expect("append");
    let read = store
        .events(&EventQuery {
            job_id,
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(read.iter().map(|event| event.seq).collect::<Vec<_>>(), seqs);
}

/// The SQLite file holds descriptors and token hashes: it is created for its owner only, and
/// SQLite's `-wal` file follows it.
#[tokio::test]
async fn a_new_sqlite_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let store = stampede_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store
        .create_job(NewJob {
            name: "j".into(),
            state: "unknown".into(),
            project: "default".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    for file in [path.clone(), dir.path().join("private.db-wal")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
}
