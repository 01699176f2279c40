//! The `projectors` binary reads its configuration from the environment:
//! its admin API listens where `PROJECTORS_ADMIN_ADDR` says; it refuses a
//! configuration it cannot run with, naming the variable at fault, and
//! stops; `projectors migrate` brings the views' schema up to date and
//! stops.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use command_api::auth::tokens::SigningKey;
use test_support::binary::{self, free_address};

/// `projectors` with `args` and `env` (which may override the rest), on a
/// log and views of its own in `folder`.
fn start(folder: &tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> binary::Running {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let mut all = vec![
        ("EVENT_STORE_URL", store_url.as_str()),
        ("VIEWS_DATABASE_URL", views_url.as_str()),
    ];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_projectors"), args, &all)
}

/// Runs `projectors` with `args` until it stops; whether it succeeded, and
/// what it wrote to stderr.
fn projectors(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let exit = start(&folder, args, env).exit();
    (exit.success, exit.stderr)
}

#[tokio::test]
async fn the_admin_api_listens_on_the_configured_address() {
    let folder = tempfile::tempdir().unwrap();
    let address = free_address();
    let listen = address.to_string();
    let public_key = SigningKey::generate().unwrap().public_key_pem();
    let env = [
        ("PROJECTORS_ADMIN_ADDR", listen.as_str()),
        ("JWT_PUBLIC_KEY", public_key.as_str()),
        ("VIEWS_POOL_SIZE", "2"),
    ];
    let mut running = start(&folder, &[], &env);
    running.wait_until_live(address).await;
    assert!(
        folder.path().join("events.db").exists(),
        "the store is where EVENT_STORE_URL says"
    );
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
    assert!(stderr.contains("JWT_PUBLIC_KEY is not valid"), "{stderr}");
}

#[test]
fn a_bad_pool_size_is_named() {
    let (succeeded, stderr) = projectors(&[], &[("PROJECTORS_ADMIN_ADDR", "off"), ("VIEWS_POOL_SIZE", "0")]);
    assert!(!succeeded);
    assert!(stderr.contains("VIEWS_POOL_SIZE is not valid"), "{stderr}");
}

#[test]
fn an_unknown_log_format_is_named() {
    let (succeeded, stderr) = projectors(&[], &[("PROJECTORS_ADMIN_ADDR", "off"), ("LOG_FORMAT", "logfmt")]);
    assert!(!succeeded);
    assert!(stderr.contains("LOG_FORMAT is not valid: \"logfmt\""), "{stderr}");
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
