//! The `projectors` binary refuses a configuration it cannot run with,
//! naming the variable at fault, and stops; `projectors migrate` brings the
//! views' schema up to date and stops.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `projectors` with `args` until it stops; whether it succeeded, and
/// what it wrote to stderr.
fn projectors(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_projectors"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "EVENT_STORE_URL",
            format!("sqlite://{}", folder.path().join("events.db").display()),
        )
        .env(
            "VIEWS_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the projectors binary runs");
    // A configuration accepted by mistake would run until stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("projectors {args:?} with {env:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is text");
    (status.success(), stderr)
}

#[test]
fn without_a_public_key_the_admin_api_cannot_start() {
    let (succeeded, stderr) = projectors(&[], &[]);
    assert!(!succeeded);
    assert!(
        stderr.contains("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set"),
        "{stderr}"
    );
    assert!(stderr.contains("PROJECTORS_ADMIN_ADDR=off"), "{stderr}");
}

#[test]
fn a_bad_admin_address_or_key_is_named() {
    let (succeeded, stderr) = projectors(&[], &[("PROJECTORS_ADMIN_ADDR", "eighty-eighty-two")]);
    assert!(!succeeded);
    assert!(stderr.contains("PROJECTORS_ADMIN_ADDR is not valid"), "{stderr}");
    let (succeeded, stderr) = projectors(&[], &[("JWT_PUBLIC_KEY", "not a key")]);
    assert!(!succeeded);
    assert!(stderr.contains("JWT_PUBLIC_KEY:"), "{stderr}");
}

#[test]
fn a_bad_pool_size_is_named() {
    let (succeeded, stderr) = projectors(&[], &[("PROJECTORS_ADMIN_ADDR", "off"), ("VIEWS_POOL_SIZE", "0")]);
    assert!(!succeeded);
    assert!(stderr.contains("VIEWS_POOL_SIZE is not valid"), "{stderr}");
}

/// Runs `projectors migrate` on `views_url`, then checks the schema there
/// as the query API does.
async fn migrate(views_url: &str) {
    let before = views::require_current(&views::connect(views_url, 1).await.unwrap()).await;
    assert!(matches!(before, Err(views::SchemaError::Empty { .. })), "{before:?}");
    let url = views_url.to_owned();
    let (succeeded, stderr) =
        tokio::task::spawn_blocking(move || projectors(&["migrate"], &[("VIEWS_DATABASE_URL", &url)]))
            .await
            .unwrap();
    assert!(succeeded, "{stderr}");
    views::require_current(&views::connect(views_url, 1).await.unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn migrate_creates_the_schema_on_sqlite_and_stops() {
    let folder = tempfile::tempdir().unwrap();
    migrate(&format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("views.db").display()
    ))
    .await;
}

#[tokio::test]
async fn migrate_creates_the_schema_on_postgres_and_stops() {
    migrate(&test_support::postgres::fresh_database().await).await;
}
