//! Several `command-api` processes started at once on one event store, as
//! an orchestrator starts replicas: each makes sure the configured
//! administrator exists, and all of them must come up (issue #11, point 6).

use std::net::SocketAddr;
use std::sync::Arc;

use domain::account::{AccountEvent, Username};
use domain::event::DomainEvent;
use domain::ids::UserId;
use event_store::StreamName;
use serde_json::json;
use test_support::binary::{self, free_address};

/// The Ed25519 private key of RFC 8410, section 10.3.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
const ADMIN: (&str, &str) = ("root", "replica-admin-password");
const REPLICAS: usize = 6;
const ROUNDS: usize = 3;

/// A replica listening on `address`, on the event store `store_url`.
fn replica(store_url: &str, address: SocketAddr) -> binary::Running {
    let address = address.to_string();
    binary::start(
        env!("CARGO_BIN_EXE_command-api"),
        &[],
        &[
            ("EVENT_STORE_URL", store_url),
            ("COMMAND_API_ADDR", &address),
            ("JWT_PRIVATE_KEY", PRIVATE_KEY),
            ("ADMIN_USERNAME", ADMIN.0),
            ("ADMIN_PASSWORD", ADMIN.1),
        ],
    )
}

/// Starts [`REPLICAS`] replicas at once on a fresh store and checks that
/// every one comes up and the administrator was registered once.
async fn start_replicas_at_once() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let addresses: Vec<SocketAddr> = (0..REPLICAS).map(|_| free_address()).collect();
    // Started one right after the other, before any has created the
    // administrator: they race to create it.
    let mut replicas: Vec<_> = addresses.iter().map(|address| replica(&store_url, *address)).collect();
    for (running, address) in replicas.iter_mut().zip(&addresses) {
        running.wait_until_live(*address).await;
    }

    let http = reqwest::Client::new();
    for address in &addresses {
        let response = http
            .post(format!("http://{address}/auth/login"))
            .json(&json!({"username": ADMIN.0, "password": ADMIN.1}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "the admin logs in at {address}"
        );
    }

    let store: Arc<dyn event_store::EventStore> = event_store::connect(&store_url).expect("the store opens");
    let user_id = UserId::for_username(&Username::parse(ADMIN.0).expect("a valid username"));
    let stream = StreamName::new(AccountEvent::stream_name(user_id)).expect("a stream name");
    let events = event_store::read_whole_stream(store.as_ref(), &stream)
        .await
        .expect("the account's stream reads");
    let types: Vec<_> = events.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(types.len(), 1, "registered once, nothing changed after: {types:?}");
}

/// Which replica wins the race, and whether the others read the store
/// before it appends, varies from run to run (one round alone missed the
/// fault about one time in six before it was fixed), so it runs in rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_at_once_all_come_up_with_one_administrator() {
    for _ in 0..ROUNDS {
        start_replicas_at_once().await;
    }
}
