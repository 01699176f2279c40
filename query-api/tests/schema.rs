//! The query API never changes the views' schema: on a database the
//! projectors have not migrated (an empty one, or one missing the latest
//! migration) the `query-api` binary waits for them up to
//! `STARTUP_WAIT_MS`, then refuses to start, says what is missing and what
//! to run, and leaves the database as it found it; migrated meanwhile, it
//! starts. On SQLite and on Postgres.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use command_api::auth::tokens::SigningKey;
use sea_orm::DatabaseConnection;
use sea_orm_migration::{MigratorTrait, SchemaManager};
use views::Migrator;

/// Every migration's name, oldest first: the tests follow the list, so a
/// new migration needs no edit here.
fn names() -> Vec<String> {
    Migrator::migrations().iter().map(|m| m.name().to_owned()).collect()
}

enum Start {
    Refused { stderr: String },
    Listening,
}

/// How long the query API waits for the schema in these tests, unless a
/// test gives it longer.
const STARTUP_WAIT_MS: &str = "300";

/// Starts the `query-api` binary on `views_url` and waits until it either
/// stops (refused, with what it wrote to stderr) or listens (then stops it).
async fn start_query_api(views_url: &str) -> Start {
    start_query_api_waiting(views_url, STARTUP_WAIT_MS, || ()).await
}

/// [`start_query_api`] with `STARTUP_WAIT_MS` set to `startup_wait`,
/// calling `waiting` once the process says it waits.
async fn start_query_api_waiting(
    views_url: &str,
    startup_wait: &str,
    waiting: impl FnOnce() + Send + 'static,
) -> Start {
    let public_key = SigningKey::generate().unwrap().public_key_pem();
    let mut child = Command::new(env!("CARGO_BIN_EXE_query-api"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VIEWS_DATABASE_URL", views_url)
        .env("JWT_PUBLIC_KEY", public_key)
        .env("QUERY_API_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("STARTUP_WAIT_MS", startup_wait)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the query-api binary runs");
    let (lines, received) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|line| drop(lines.send(line)))
    });
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stderr = String::new();
        let mut waiting = Some(waiting);
        loop {
            match received.recv_timeout(Duration::from_millis(20)) {
                Ok(line) if line.contains("query API listening") => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    return Start::Listening;
                }
                Ok(line) => {
                    if line.contains("waiting for the views database")
                        && let Some(waiting) = waiting.take()
                    {
                        waiting();
                    }
                    stderr.push_str(&format!("{line}\n"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    assert!(
                        !status.success(),
                        "the query API stopped without listening or failing: {stderr}"
                    );
                    return Start::Refused { stderr };
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("the query API neither listened nor stopped within 30 s: {stderr}");
            }
        }
    })
    .await
    .unwrap()
}

async fn refused(views_url: &str) -> String {
    match start_query_api(views_url).await {
        Start::Refused { stderr } => stderr,
        Start::Listening => panic!("the query API started on {views_url}, whose schema is not current"),
    }
}

fn assert_names_the_missing_schema(stderr: &str) {
    let latest = names().pop().unwrap();
    assert!(
        stderr.contains(&format!(
            "the views database has no schema (no migration applied) but this build needs {latest}: run `projectors migrate`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("gave up waiting for the views database and its schema after"),
        "{stderr}"
    );
}

fn assert_names_the_missing_migration(stderr: &str) {
    let mut names = names();
    let (latest, previous) = (names.pop().unwrap(), names.pop().unwrap());
    assert!(
        stderr.contains(&format!(
            "the views schema is at {previous} but this build needs {latest}: run `projectors migrate`"
        )),
        "{stderr}"
    );
}

async fn has_table(url: &str, table: &str) -> bool {
    let db = views::connect(url, 1).await.unwrap();
    SchemaManager::new(&db).has_table(table).await.unwrap()
}

/// A database with every migration but the latest.
async fn migrated_but_the_latest(url: &str) -> DatabaseConnection {
    let db = views::connect(url, 1).await.unwrap();
    Migrator::up(&db, Some(u32::try_from(names().len() - 1).unwrap()))
        .await
        .unwrap();
    db
}

fn sqlite_file(folder: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display())
}

#[tokio::test]
async fn on_sqlite_an_empty_file_is_refused_and_gets_no_tables() {
    let folder = tempfile::tempdir().unwrap();
    let url = sqlite_file(&folder);
    assert_names_the_missing_schema(&refused(&url).await);
    assert!(!has_table(&url, "seaql_migrations").await);
    assert!(!has_table(&url, "products").await);
}

#[tokio::test]
async fn on_sqlite_a_schema_missing_the_latest_migration_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let url = sqlite_file(&folder);
    let db = migrated_but_the_latest(&url).await;
    assert_names_the_missing_migration(&refused(&url).await);
    assert!(views::require_current(&db).await.is_err(), "still behind");
}

#[tokio::test]
async fn on_sqlite_a_migrated_database_is_served() {
    let folder = tempfile::tempdir().unwrap();
    let url = sqlite_file(&folder);
    views::migrate(&views::connect(&url, 1).await.unwrap()).await.unwrap();
    assert!(matches!(start_query_api(&url).await, Start::Listening));
}

#[tokio::test]
async fn on_postgres_an_empty_database_is_refused_and_gets_no_tables() {
    let url = test_support::postgres::fresh_database().await;
    assert_names_the_missing_schema(&refused(&url).await);
    assert!(!has_table(&url, "seaql_migrations").await);
}

#[tokio::test]
async fn on_postgres_a_schema_missing_the_latest_migration_is_refused() {
    let url = test_support::postgres::fresh_database().await;
    let db = migrated_but_the_latest(&url).await;
    assert_names_the_missing_migration(&refused(&url).await);
    assert!(views::require_current(&db).await.is_err(), "still behind");
    views::migrate(&db).await.unwrap();
    assert!(matches!(start_query_api(&url).await, Start::Listening));
}

/// Started before the projectors migrate (as when every service starts at
/// once), it waits for the schema and then serves.
#[tokio::test]
async fn on_postgres_a_query_api_started_before_the_migration_waits_for_it() {
    let url = test_support::postgres::fresh_database().await;
    let db = views::connect(&url, 1).await.unwrap();
    let (migrate, waiting) = tokio::sync::oneshot::channel();
    let migrated = tokio::spawn(async move {
        waiting.await.unwrap();
        views::migrate(&db).await.unwrap();
    });
    let start = start_query_api_waiting(&url, "30000", move || migrate.send(()).unwrap());
    assert!(matches!(start.await, Start::Listening));
    migrated.await.unwrap();
}
