//! What operators see of the `command-api` binary: with `METRICS_ADDR` the
//! metrics are served there and the API's port answers 404 at `/metrics`;
//! a password in `EVENT_STORE_URL` never reaches stdout or stderr.

use test_support::binary::{self, free_address};

/// The Ed25519 private key of RFC 8410, section 10.3.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

/// `command-api` with a signing key and `env`.
fn command_api(env: &[(&str, &str)]) -> binary::Running {
    let mut all = vec![("JWT_PRIVATE_KEY", PRIVATE_KEY)];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_command-api"), &[], &all)
}

#[tokio::test]
async fn with_metrics_addr_the_metrics_move_off_the_api_port() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let (api, metrics) = (free_address(), free_address());
    let (api_text, metrics_text) = (api.to_string(), metrics.to_string());
    let mut running = command_api(&[
        ("EVENT_STORE_URL", &store_url),
        ("COMMAND_API_ADDR", &api_text),
        ("METRICS_ADDR", &metrics_text),
    ]);
    running.wait_until_live(api).await;

    let (status, content_type, _) = test_support::binary::get(format!("http://{api}/metrics")).await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    let (status, _, text) = test_support::binary::get(format!("http://{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"http_requests_total{service="command-api""#), "{text}");
}

#[tokio::test]
async fn a_password_in_the_event_store_url_is_never_printed() {
    // A setting the client refuses: the error names the URL.
    let refused = command_api(&[
        ("EVENT_STORE_URL", "esdb://admin:SECRETPW@127.0.0.1:1?tls=perhaps"),
        ("COMMAND_API_ADDR", &free_address().to_string()),
    ]);
    let exit = tokio::task::spawn_blocking(move || refused.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(exit.stderr.contains("esdb://admin:***@127.0.0.1:1"), "{}", exit.stderr);
    for (name, output) in [("stdout", &exit.stdout), ("stderr", &exit.stderr)] {
        assert!(!output.contains("SECRETPW"), "{name}: {output}");
    }

    // A server that is not there: the API waits for it, then gives up
    // (STARTUP_WAIT_MS), and what it prints names the URL, no password.
    let running = command_api(&[
        ("EVENT_STORE_URL", "esdb://admin:SECRETPW@127.0.0.1:1?tls=false"),
        ("COMMAND_API_ADDR", &free_address().to_string()),
        ("STARTUP_WAIT_MS", "300"),
        ("RUST_LOG", "debug"),
    ]);
    let exit = tokio::task::spawn_blocking(move || running.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(exit.stderr.contains("esdb://admin:***@127.0.0.1:1"), "{}", exit.stderr);
    for (name, output) in [("stdout", &exit.stdout), ("stderr", &exit.stderr)] {
        assert!(!output.contains("SECRETPW"), "{name}: {output}");
    }
}
