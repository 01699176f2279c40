//! The `command-api` binary refuses a token lifetime above the maximum
//! verifiers accept, naming `JWT_TTL_SECONDS`, and starts with the maximum.

use api_common::verifier::MAX_TOKEN_LIFETIME;
use test_support::binary::{self, free_address};

/// The Ed25519 private key of RFC 8410, section 10.3.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

fn command_api(folder: &tempfile::TempDir, address: &str, ttl_seconds: u64) -> binary::Running {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let ttl = ttl_seconds.to_string();
    let env = [
        ("EVENT_STORE_URL", store_url.as_str()),
        ("COMMAND_API_ADDR", address),
        ("JWT_PRIVATE_KEY", PRIVATE_KEY),
        ("JWT_TTL_SECONDS", ttl.as_str()),
    ];
    binary::start(env!("CARGO_BIN_EXE_command-api"), &[], &env)
}

#[test]
fn a_lifetime_above_the_maximum_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let exit = command_api(&folder, &address, MAX_TOKEN_LIFETIME.as_secs() + 1).exit();
    assert!(!exit.success);
    assert!(
        exit.stderr
            .contains("JWT_TTL_SECONDS is not valid: 86401 s is above the 86400 s maximum"),
        "{}",
        exit.stderr
    );
}

#[tokio::test]
async fn the_maximum_lifetime_itself_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let address = free_address().to_string();
    let mut api = command_api(&folder, &address, MAX_TOKEN_LIFETIME.as_secs());
    api.wait_until_live(address.parse().expect("an address")).await;
}
