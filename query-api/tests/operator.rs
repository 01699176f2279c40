//! What operators see of the `query-api` binary: with `METRICS_ADDR` the
//! metrics are served there and the API's port answers 404 at `/metrics`;
//! a password in `VIEWS_DATABASE_URL` never reaches stdout or stderr.

use command_api::auth::tokens::SigningKey;
use test_support::binary::{self, free_address};

/// `query-api` with a public key, `VIEWS_DATABASE_URL` and `env`.
fn query_api(views_url: &str, env: &[(&str, &str)]) -> binary::Running {
    let public_key = SigningKey::generate().expect("a key").public_key_pem();
    let mut all = vec![
        ("VIEWS_DATABASE_URL", views_url),
        ("JWT_PUBLIC_KEY", public_key.as_str()),
    ];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_query-api"), &[], &all)
}

#[tokio::test]
async fn with_metrics_addr_the_metrics_move_off_the_api_port() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let db = views::connect(&views_url, 1).await.expect("the views open");
    views::migrate(&db).await.expect("the views migrate");
    let (api, metrics) = (free_address(), free_address());
    let (api_text, metrics_text) = (api.to_string(), metrics.to_string());
    let env = [
        ("QUERY_API_ADDR", api_text.as_str()),
        ("METRICS_ADDR", metrics_text.as_str()),
    ];
    let mut running = query_api(&views_url, &env);
    running.wait_until_live(api).await;

    let (status, content_type, _) = test_support::binary::get(format!("http://{api}/metrics")).await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    let (status, _, text) = test_support::binary::get(format!("http://{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"http_requests_total{service="query-api""#), "{text}");

    let other = free_address();
    let other_text = other.to_string();
    let mut without = query_api(&views_url, &[("QUERY_API_ADDR", other_text.as_str())]);
    without.wait_until_live(other).await;
    let (status, _, text) = test_support::binary::get(format!("http://{other}/metrics")).await;
    assert_eq!(status, 200, "unset, the API's port serves them: {text}");
}

#[tokio::test]
async fn a_password_in_the_views_url_is_never_printed() {
    let no_database = test_support::postgres::database_url("shop_no_such_database");
    let (views_url, secret) = test_support::postgres::with_password(&no_database);
    let listen = free_address().to_string();
    let running = query_api(&views_url, &[("QUERY_API_ADDR", listen.as_str())]);
    let exit = tokio::task::spawn_blocking(move || running.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success, "there is no such database");
    let shown = views_url.replace(&format!(":{secret}@"), ":***@");
    assert!(
        exit.stderr.contains(&shown),
        "the error still names the database: {}",
        exit.stderr
    );
    for (name, output) in [("stdout", &exit.stdout), ("stderr", &exit.stderr)] {
        assert!(!output.contains(&secret), "{name}: {output}");
    }
}
