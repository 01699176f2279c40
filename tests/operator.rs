//! What operators see of `cargo run`'s binary: with `METRICS_ADDR` the one
//! process serves its metrics there and none of its three APIs serves them
//! at `/metrics`; passwords in `EVENT_STORE_URL` and `VIEWS_DATABASE_URL`
//! never reach stdout or stderr.

use std::net::SocketAddr;

use test_support::binary::{self, free_address};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn shop(env: &[(&str, &str)]) -> binary::Running {
    binary::start(env!("CARGO_BIN_EXE_shop"), &[], env)
}

/// `GET {path}` from `address`, by hand (this package has no HTTP client):
/// the status line's code and the whole answer.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.expect("it listens");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("an answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {answer}"));
    (status, answer)
}

#[tokio::test]
async fn with_metrics_addr_no_api_port_serves_the_metrics() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let apis = [free_address(), free_address(), free_address()];
    let metrics = free_address();
    let [commands, queries, admin, metrics_text] = [apis[0], apis[1], apis[2], metrics].map(|a| a.to_string());
    let mut running = shop(&[
        ("EVENT_STORE_URL", &store_url),
        ("VIEWS_DATABASE_URL", &views_url),
        ("COMMAND_API_ADDR", &commands),
        ("QUERY_API_ADDR", &queries),
        ("PROJECTORS_ADMIN_ADDR", &admin),
        ("METRICS_ADDR", &metrics_text),
        ("VIEWS_POOL_SIZE", "2"),
    ]);
    for address in apis {
        running.wait_until_live(address).await;
        let (status, answer) = get(address, "/metrics").await;
        assert_eq!(status, 404, "{address}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    let (status, answer) = get(metrics, "/metrics").await;
    assert_eq!(status, 200, "{answer}");
    for service in ["command-api", "query-api", "projectors"] {
        let series = format!(r#"http_requests_total{{service="{service}""#);
        assert!(answer.contains(&series), "one address for the whole process: {answer}");
    }
}

fn assert_never_printed(secret: &str, stdout: &str, stderr: &str) {
    for (name, output) in [("stdout", stdout), ("stderr", stderr)] {
        assert!(!output.contains(secret), "{name}: {output}");
    }
}

#[tokio::test]
async fn the_banner_shows_the_views_url_without_its_password() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let (views_url, secret) = test_support::postgres::with_password(&test_support::postgres::fresh_database().await);
    let queries = free_address();
    let mut running = shop(&[
        ("EVENT_STORE_URL", &store_url),
        ("VIEWS_DATABASE_URL", &views_url),
        ("COMMAND_API_ADDR", &free_address().to_string()),
        ("QUERY_API_ADDR", &queries.to_string()),
        ("PROJECTORS_ADMIN_ADDR", "off"),
        ("VIEWS_POOL_SIZE", "2"),
        ("RUST_LOG", "debug"),
    ]);
    running.wait_until_live(queries).await;
    test_support::wait_for("the banner", async || {
        let stdout = running.stdout();
        stdout.contains("Ctrl-C stops it").then_some(()).ok_or(stdout)
    })
    .await;
    let shown = views_url.replace(&format!(":{secret}@"), ":***@");
    assert!(running.stdout().contains(&shown), "{}", running.stdout());
    assert_never_printed(&secret, &running.stdout(), &running.stderr());
}

#[tokio::test]
async fn passwords_in_urls_it_cannot_use_are_never_printed() {
    let no_database = test_support::postgres::database_url("shop_no_such_database");
    let (views_url, secret) = test_support::postgres::with_password(&no_database);
    let folder = tempfile::tempdir().unwrap();
    let embedded = format!("sqlite://{}", folder.path().join("events.db").display());
    // A setting the client refuses; a store that is not there (it gives up
    // waiting after STARTUP_WAIT_MS); views with no such database.
    for (store_url, views_url, named) in [
        (
            "esdb://admin:SECRETPW@127.0.0.1:1?tls=perhaps",
            views_url.as_str(),
            "esdb://admin:***@127.0.0.1:1",
        ),
        (
            "esdb://admin:SECRETPW@127.0.0.1:1?tls=false",
            views_url.as_str(),
            "esdb://admin:***@127.0.0.1:1",
        ),
        (embedded.as_str(), views_url.as_str(), "/shop_no_such_database"),
    ] {
        let running = shop(&[
            ("EVENT_STORE_URL", store_url),
            ("VIEWS_DATABASE_URL", views_url),
            ("COMMAND_API_ADDR", &free_address().to_string()),
            ("QUERY_API_ADDR", &free_address().to_string()),
            ("PROJECTORS_ADMIN_ADDR", "off"),
            ("STARTUP_WAIT_MS", "300"),
        ]);
        let exit = tokio::task::spawn_blocking(move || running.exit())
            .await
            .expect("the binary is waited for");
        assert!(!exit.success, "{store_url} with {views_url} cannot run");
        assert!(exit.stderr.contains(named), "the error still names it: {}", exit.stderr);
        assert_never_printed("SECRETPW", &exit.stdout, &exit.stderr);
        assert_never_printed(&secret, &exit.stdout, &exit.stderr);
    }
}
