//! The `command-api` binary reads its configuration from the environment:
//! it listens where `COMMAND_API_ADDR` says, and refuses a value it cannot
//! use, naming the variable, instead of starting.

use test_support::binary::{self, free_address};

/// The Ed25519 private key of RFC 8410, section 10.3.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

/// `command-api` with `env` on an event store of its own in `folder`.
fn command_api(folder: &tempfile::TempDir, env: &[(&str, &str)]) -> binary::Running {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let mut all = vec![("EVENT_STORE_URL", store_url.as_str())];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_command-api"), &[], &all)
}

#[tokio::test]
async fn it_listens_on_the_configured_address_with_the_configured_store() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let mut api = command_api(
        &folder,
        &[("COMMAND_API_ADDR", &address), ("JWT_PRIVATE_KEY", PRIVATE_KEY)],
    );
    api.wait_until_live(address.parse().expect("an address")).await;
    assert!(
        folder.path().join("events.db").exists(),
        "the store is where EVENT_STORE_URL says"
    );
}

#[test]
fn a_bad_value_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let exit = command_api(
        &folder,
        &[
            ("COMMAND_API_ADDR", &address),
            ("JWT_PRIVATE_KEY", PRIVATE_KEY),
            ("ORDER_WAIT_MS", "five seconds"),
        ],
    )
    .exit();
    assert!(!exit.success);
    assert!(
        exit.stderr.contains("ORDER_WAIT_MS is not valid: \"five seconds\""),
        "{}",
        exit.stderr
    );
}

#[test]
fn without_a_private_key_the_api_refuses_to_start() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let exit = command_api(&folder, &[("COMMAND_API_ADDR", &address)]).exit();
    assert!(!exit.success);
    assert!(
        exit.stderr
            .contains("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must be set"),
        "{}",
        exit.stderr
    );
}

#[test]
fn an_unknown_log_format_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let env = [
        ("COMMAND_API_ADDR", address.as_str()),
        ("JWT_PRIVATE_KEY", PRIVATE_KEY),
        ("LOG_FORMAT", "logfmt"),
    ];
    let exit = command_api(&folder, &env).exit();
    assert!(!exit.success);
    assert!(
        exit.stderr.contains("LOG_FORMAT is not valid: \"logfmt\""),
        "{}",
        exit.stderr
    );
    assert!(!folder.path().join("events.db").exists(), "nothing started");
}
