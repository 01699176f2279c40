//! What operators see of the `projectors` binary: with `METRICS_ADDR` the
//! metrics are served there and the admin API's port answers 404 at
//! `/metrics`; passwords in `EVENT_STORE_URL` and `VIEWS_DATABASE_URL`
//! never reach stdout or stderr.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use command_api::auth::tokens::SigningKey;
use test_support::binary::{self, free_address};

fn projectors(env: &[(&str, &str)]) -> binary::Running {
    binary::start(env!("CARGO_BIN_EXE_projectors"), &[], env)
}

#[tokio::test]
async fn with_metrics_addr_the_metrics_move_off_the_admin_port() {
    let folder = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let public_key = SigningKey::generate().unwrap().public_key_pem();
    let (admin, metrics) = (free_address(), free_address());
    let (admin_text, metrics_text) = (admin.to_string(), metrics.to_string());
    let mut running = projectors(&[
        ("EVENT_STORE_URL", &store_url),
        ("VIEWS_DATABASE_URL", &views_url),
        ("JWT_PUBLIC_KEY", &public_key),
        ("PROJECTORS_ADMIN_ADDR", &admin_text),
        ("METRICS_ADDR", &metrics_text),
    ]);
    running.wait_until_live(admin).await;

    let (status, content_type, _) = test_support::binary::get(format!("http://{admin}/metrics")).await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    let (status, _, text) = test_support::binary::get(format!("http://{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"http_requests_total{service="projectors""#), "{text}");
}

/// Runs `projectors` with an event store at `store_url` and views at
/// `views_url` until it gives up waiting for them (after 300 ms); what it
/// printed.
async fn gives_up(store_url: &str, views_url: &str) -> test_support::binary::Exit {
    let running = projectors(&[
        ("EVENT_STORE_URL", store_url),
        ("VIEWS_DATABASE_URL", views_url),
        ("PROJECTORS_ADMIN_ADDR", "off"),
        ("STARTUP_WAIT_MS", "300"),
    ]);
    tokio::task::spawn_blocking(move || running.exit()).await.unwrap()
}

#[tokio::test]
async fn passwords_in_the_urls_are_never_printed() {
    let no_database = test_support::postgres::database_url("shop_no_such_database");
    let (views_url, secret) = test_support::postgres::with_password(&no_database);
    let folder = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    // The store first (none listens there), then the views (no such
    // database): each error names its URL, the password masked.
    let no_store = gives_up("esdb://admin:SECRETPW@127.0.0.1:1?tls=false", &views_url).await;
    let no_views = gives_up(&store_url, &views_url).await;
    assert!(!no_store.success && !no_views.success, "neither can start");
    assert!(
        no_store.stderr.contains("esdb://admin:***@127.0.0.1:1"),
        "the error names the store: {}",
        no_store.stderr
    );
    let shown = views_url.replace(&format!(":{secret}@"), ":***@");
    assert!(
        no_views.stderr.contains(&shown),
        "the error still names the database: {}",
        no_views.stderr
    );
    for exit in [&no_store, &no_views] {
        for (name, output) in [("stdout", &exit.stdout), ("stderr", &exit.stderr)] {
            for secret in ["SECRETPW", secret.as_str()] {
                assert!(!output.contains(secret), "{name}: {output}");
            }
        }
    }
}
