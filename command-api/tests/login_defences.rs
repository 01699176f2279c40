//! The defences of `POST /auth/login` and `POST /auth/register` over a real
//! listening server: throttled credential guessing (429) and the bounded
//! password hashing queue (503). A second client address is a client bound
//! to 127.0.0.2, which reaches the server on 127.0.0.1 over loopback.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use command_api::auth::Budget;
use command_api::config::Config;
use reqwest::StatusCode;
use serde_json::json;
use test_support::App;

const HOUR: Duration = Duration::from_secs(3600);

/// [`App::config`] with these budgets, each refilling one per hour.
fn config(per_username: u32, per_address: u32, registrations: u32) -> Config {
    let budget = |burst| Budget { burst, refill: HOUR };
    let mut config = App::config();
    config.throttle.login_per_username = budget(per_username);
    config.throttle.login_per_address = budget(per_address);
    config.throttle.register_per_address = budget(registrations);
    config
}

/// A client whose connections come from `address`.
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

struct Answer {
    status: StatusCode,
    retry_after: Option<u32>,
    took: Duration,
}

/// POSTs `body` to `path`; a refusal must be problem+json with its status.
async fn post(http: &reqwest::Client, app: &App, path: &str, body: serde_json::Value) -> Answer {
    let started = Instant::now();
    let response = http.post(app.url(path)).json(&body).send().await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    let took = started.elapsed();
    if !status.is_success() {
        assert_eq!(content_type, "application/problem+json", "{status} {body}");
        assert_eq!(body["status"], status.as_u16(), "{body}");
    }
    Answer {
        status,
        retry_after,
        took,
    }
}

async fn login(http: &reqwest::Client, app: &App, username: &str, password: &str) -> Answer {
    post(
        http,
        app,
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

async fn register(http: &reqwest::Client, app: &App, username: &str) -> Answer {
    let body = json!({"username": username, "password": App::CUSTOMER_PASSWORD, "displayName": username});
    post(http, app, "/auth/register", body).await
}

/// Asserts a 429 whose `Retry-After` is the hour a token takes to refill.
fn assert_throttled(answer: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry_after = answer.retry_after.unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!(
        (3500..=3600).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
}

/// Past three failures a username is refused, with its right password
/// too and from any address, while other usernames still get checked.
/// The refusals cost no hash: the fastest of them takes well under half
/// the fastest failure, which checks a password (timing the fastest, as
/// load only ever adds time). Checked after the hash, they cost as much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_budget_a_username_gets_429_decided_before_any_hash() {
    let app = App::start_with(config(3, 100, 100)).await;
    app.register("henry").await;
    let (here, elsewhere) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    let mut failures = Vec::new();
    for _ in 0..3 {
        let answer = login(&here, &app, "henry", "wrong-password").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        failures.push(answer.took);
    }
    let mut refusals = Vec::new();
    for password in [
        "wrong-password",
        App::CUSTOMER_PASSWORD,
        "another-guess",
        "wrong-password",
    ] {
        let answer = login(&here, &app, "henry", password).await;
        assert_throttled(&answer, password);
        refusals.push(answer.took);
    }
    assert_throttled(
        &login(&elsewhere, &app, "HENRY", App::CUSTOMER_PASSWORD).await,
        "the same username from another address, in other case",
    );
    let other = login(&here, &app, "nobody-else", "wrong-password").await;
    assert_eq!(
        other.status,
        StatusCode::UNAUTHORIZED,
        "another username has its own budget"
    );
    let (fastest_failure, fastest_refusal) = (*failures.iter().min().unwrap(), *refusals.iter().min().unwrap());
    assert!(
        fastest_refusal < fastest_failure / 2,
        "refusals {refusals:?}, failures {failures:?}"
    );
}

/// Two failures and a success, then three more failures: all judged, as
/// the success started the username afresh; the next is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_resets_its_usernames_budget() {
    let app = App::start_with(config(3, 100, 100)).await;
    app.register("irene").await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(
            login(&http, &app, "irene", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&http, &app, "irene", App::CUSTOMER_PASSWORD).await.status,
        StatusCode::OK
    );
    for n in 0..3 {
        let answer = login(&http, &app, "irene", "wrong").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "failure {n} after the success");
    }
    assert_throttled(&login(&http, &app, "irene", "wrong").await, "the fourth failure");
}

/// An address's failures add up across usernames; another address has a
/// budget of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_budget_spans_usernames_and_each_address_has_its_own() {
    let app = App::start_with(config(100, 4, 100)).await;
    let (here, elsewhere) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    for n in 0..4 {
        let answer = login(&here, &app, &format!("guess{n}"), "wrong").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    assert_throttled(&login(&here, &app, "guess4", "wrong").await, "a fifth username");
    let answer = login(&elsewhere, &app, "guess4", "wrong").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "another address");
}

/// Registrations are counted per address; another address registers on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_throttled_per_address() {
    let app = App::start_with(config(100, 100, 2)).await;
    let (here, elsewhere) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    for username in ["reg-one", "reg-two"] {
        assert_eq!(register(&here, &app, username).await.status, StatusCode::CREATED);
    }
    assert_throttled(&register(&here, &app, "reg-three").await, "a third registration");
    assert_eq!(
        register(&elsewhere, &app, "reg-three").await.status,
        StatusCode::CREATED
    );
}

/// The value of the metric line that starts with `series ` (0 if none).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// `GET /metrics` counts failed and throttled logins and registrations.
/// The recorder is the process's, shared with the other tests here, so
/// the counts grow by at least this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_throttled_attempts_are_counted_in_the_metrics() {
    let app = App::start_with(config(2, 100, 1)).await;
    let http = reqwest::Client::new();
    let scrape = async || {
        http.get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let series = [
        "auth_login_failures_total",
        "auth_throttled_total{operation=\"login\"}",
        "auth_throttled_total{operation=\"register\"}",
    ];
    let before = scrape().await;
    for _ in 0..2 {
        assert_eq!(
            login(&http, &app, "counted", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..3 {
        assert_throttled(&login(&http, &app, "counted", "wrong").await, "login");
    }
    register(&http, &app, "counted-one").await;
    assert_throttled(&register(&http, &app, "counted-two").await, "registration");
    let after = scrape().await;
    for (series, grew) in series.iter().zip([2.0, 3.0, 1.0]) {
        let (was, is) = (metric(&before, series), metric(&after, series));
        assert!(is - was >= grew, "{series}: {was} -> {is}\n{after}");
    }
}

/// Far more concurrent logins than the hashing threads and the queue hold:
/// some succeed, the rest are refused 503 with `Retry-After` without
/// waiting for a hashing thread, faster than the logins that were checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_past_the_queue_gets_fast_503s_while_some_succeed() {
    const QUEUE: usize = 2;
    let mut config = config(10_000, 10_000, 100);
    config.hash_queue = QUEUE;
    let app = App::start_with(config).await;
    app.register("flood").await;
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flood = 4 * (slots + QUEUE) + 16;
    let http = reqwest::Client::new();
    let answers =
        futures::future::join_all((0..flood).map(|_| login(&http, &app, "flood", App::CUSTOMER_PASSWORD))).await;
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for answer in &answers {
        match answer.status {
            StatusCode::OK => accepted.push(answer.took),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer.retry_after, Some(1));
                refused.push(answer.took);
            }
            other => panic!("a login answered {other}"),
        }
    }
    assert!(
        !accepted.is_empty() && !refused.is_empty(),
        "{} accepted",
        accepted.len()
    );
    accepted.sort();
    refused.sort();
    let median = |sorted: &[Duration]| sorted[sorted.len() / 2];
    assert!(
        median(&refused) < median(&accepted) && refused.last() < accepted.last(),
        "refused {refused:?}, accepted {accepted:?}"
    );
}
