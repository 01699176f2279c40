//! The `query-api` binary reads its configuration from the environment:
//! it serves the views `VIEWS_DATABASE_URL` names on the address
//! `QUERY_API_ADDR` says, and refuses a value it cannot use, naming the
//! variable, instead of starting.

use command_api::auth::tokens::SigningKey;
use test_support::binary::{self, free_address};

/// `query-api` with `env` (which may override the rest), migrated views
/// in `folder` and a public key.
async fn query_api(folder: &tempfile::TempDir, env: &[(&str, &str)]) -> binary::Running {
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let db = views::connect(&views_url, 1).await.expect("the views open");
    views::migrate(&db).await.expect("the views migrate");
    let public_key = SigningKey::generate().expect("a key").public_key_pem();
    let mut all = vec![
        ("VIEWS_DATABASE_URL", views_url.as_str()),
        ("JWT_PUBLIC_KEY", public_key.as_str()),
    ];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_query-api"), &[], &all)
}

#[tokio::test]
async fn it_listens_on_the_configured_address() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address();
    let listen = address.to_string();
    let mut api = query_api(
        &folder,
        &[
            ("QUERY_API_ADDR", &listen),
            ("VIEWS_POOL_SIZE", "2"),
            ("READ_WAIT_MS", "100"),
        ],
    )
    .await;
    api.wait_until_live(address).await;
}

#[tokio::test]
async fn a_bad_value_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let listen = free_address().to_string();
    let api = query_api(&folder, &[("QUERY_API_ADDR", &listen), ("READ_WAIT_MS", "2s")]).await;
    let exit = tokio::task::spawn_blocking(move || api.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(
        exit.stderr.contains("READ_WAIT_MS is not valid: \"2s\""),
        "{}",
        exit.stderr
    );
}

#[tokio::test]
async fn an_unknown_log_format_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let listen = free_address().to_string();
    let api = query_api(&folder, &[("QUERY_API_ADDR", &listen), ("LOG_FORMAT", "logfmt")]).await;
    let exit = tokio::task::spawn_blocking(move || api.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(
        exit.stderr.contains("LOG_FORMAT is not valid: \"logfmt\""),
        "{}",
        exit.stderr
    );
}

#[tokio::test]
async fn without_a_public_key_it_refuses_to_start() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let listen = free_address().to_string();
    let api = query_api(&folder, &[("QUERY_API_ADDR", &listen), ("JWT_PUBLIC_KEY", "")]).await;
    let exit = tokio::task::spawn_blocking(move || api.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(
        exit.stderr
            .contains("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set"),
        "{}",
        exit.stderr
    );
}
