//! `cargo run`'s binary reads every service's configuration from the
//! environment: each API listens where its variable says, the projectors'
//! admin API can be turned off, and a value that cannot be used is named
//! and nothing starts.

use std::net::SocketAddr;

use test_support::binary::{self, free_address};

/// `shop` with `env` (which may override the rest), its log and views in
/// `folder`.
fn shop(folder: &tempfile::TempDir, env: &[(&str, &str)]) -> binary::Running {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let mut all = vec![
        ("EVENT_STORE_URL", store_url.as_str()),
        ("VIEWS_DATABASE_URL", views_url.as_str()),
    ];
    all.extend_from_slice(env);
    binary::start(env!("CARGO_BIN_EXE_shop"), &[], &all)
}

/// Three free addresses: the command API's, the query API's, the admin API's.
fn addresses() -> [(SocketAddr, String); 3] {
    [(); 3].map(|()| {
        let address = free_address();
        (address, address.to_string())
    })
}

#[tokio::test]
async fn every_api_listens_where_its_variable_says() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let [commands, queries, admin] = addresses();
    let mut running = shop(
        &folder,
        &[
            ("COMMAND_API_ADDR", &commands.1),
            ("QUERY_API_ADDR", &queries.1),
            ("PROJECTORS_ADMIN_ADDR", &admin.1),
            ("READ_WAIT_MS", "100"),
            ("VIEWS_POOL_SIZE", "2"),
        ],
    );
    for (address, _) in [commands, queries, admin] {
        running.wait_until_live(address).await;
    }
    assert!(folder.path().join("events.db").exists(), "{}", running.stderr());
    assert!(folder.path().join("views.db").exists(), "{}", running.stderr());
}

#[tokio::test]
async fn the_admin_api_can_be_turned_off() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let [commands, queries, _] = addresses();
    let mut running = shop(
        &folder,
        &[
            ("COMMAND_API_ADDR", &commands.1),
            ("QUERY_API_ADDR", &queries.1),
            ("PROJECTORS_ADMIN_ADDR", "off"),
        ],
    );
    running.wait_until_live(queries.0).await;
    // The banner comes once everything has started.
    test_support::wait_for("the banner", async || {
        let stdout = running.stdout();
        stdout.contains("Ctrl-C stops it").then_some(()).ok_or(stdout)
    })
    .await;
    assert!(
        running
            .stdout()
            .contains("without their admin API (PROJECTORS_ADMIN_ADDR=off)"),
        "{}",
        running.stdout()
    );
}

#[tokio::test]
async fn a_bad_value_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let [commands, queries, admin] = addresses();
    let running = shop(
        &folder,
        &[
            ("COMMAND_API_ADDR", &commands.1),
            ("QUERY_API_ADDR", &queries.1),
            ("PROJECTORS_ADMIN_ADDR", &admin.1),
            ("READ_WAIT_MS", "two seconds"),
        ],
    );
    let exit = tokio::task::spawn_blocking(move || running.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(
        exit.stderr.contains("READ_WAIT_MS is not valid: \"two seconds\""),
        "{}",
        exit.stderr
    );
    assert!(!folder.path().join("events.db").exists(), "nothing started");
}
