//! The views database going away under the running services (#18): a
//! Postgres server of the test's own is stopped as a crash stops it
//! (`pg_ctl stop -m immediate`) while a command API, the projectors and a
//! query API run as processes of their own, and started again.
//!
//! While it is down, reads that need it answer 503 problem+json with
//! `Retry-After` within a bounded time, readiness answers 503 within 2 s
//! and liveness 200, in the query API and in the projectors; the command
//! API still acknowledges writes (its log is elsewhere). Once it is back,
//! every service resumes without a restart and what was acknowledged
//! during the outage reads back. And a read held up by a lock longer than
//! `VIEWS_STATEMENT_TIMEOUT_MS` answers the same 503.
//!
//! Where no Postgres binaries are installed the outage test is listed as
//! ignored, with the reason (`build.rs`).

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::deployment::{ADMIN, Deployment, Process};
use test_support::killable::build_binaries;

/// How soon a read needing the database must fail while it is down: the
/// default `VIEWS_ACQUIRE_TIMEOUT_MS` (2 s) and some room.
const FAIL_FAST: Duration = Duration::from_secs(3);
/// How soon readiness must answer 503 while a dependency is down.
const NOT_READY: Duration = Duration::from_secs(2);

/// An answer and how long it took.
struct Timed {
    status: StatusCode,
    retry_after: Option<String>,
    content_type: String,
    body: String,
    took: Duration,
}

async fn timed(request: reqwest::RequestBuilder) -> Timed {
    let started = Instant::now();
    let response = request.timeout(Duration::from_secs(30)).send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let retry_after = header("retry-after");
    let content_type = header("content-type").unwrap_or_default();
    let status = response.status();
    let body = response.text().await.unwrap();
    Timed {
        status,
        retry_after,
        content_type,
        body,
        took: started.elapsed(),
    }
}

/// Asserts that `answer` is the fast 503 problem with `Retry-After`.
fn assert_fails_fast(what: &str, answer: &Timed) {
    println!("{what}: {} in {:?}", answer.status, answer.took);
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        answer.body
    );
    assert!(answer.took < FAIL_FAST, "{what} took {:?}", answer.took);
    assert_eq!(answer.content_type, "application/problem+json", "{what}");
    assert!(answer.retry_after.is_some(), "{what} has no Retry-After");
}

/// Asserts that `url` answers readiness 503 within [`NOT_READY`] and
/// liveness 200.
async fn assert_not_ready_but_live(http: &reqwest::Client, name: &str, url: &str) {
    let ready = timed(http.get(format!("{url}/health/ready"))).await;
    println!(
        "{name} readiness: {} in {:?} ({})",
        ready.status, ready.took, ready.body
    );
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{name}: {}", ready.body);
    assert!(ready.took < NOT_READY, "{name} readiness took {:?}", ready.took);
    let live = timed(http.get(format!("{url}/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK, "{name} liveness");
    assert!(live.took < NOT_READY, "{name} liveness took {:?}", live.took);
}

/// Logs the administrator in at `commands`: a token.
async fn admin_token(http: &reqwest::Client, commands: &Process) -> String {
    let (status, body) = test_support::respond(
        http.post(format!("{}/auth/login", commands.url()))
            .json(&json!({"username": ADMIN.0, "password": ADMIN.1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["accessToken"].as_str().unwrap().to_owned()
}

/// Creates a product `sku` at `commands`: its id and position.
async fn create_product(http: &reqwest::Client, commands: &Process, token: &str, sku: &str) -> (String, String) {
    let (status, body) = test_support::respond(
        http.post(format!("{}/products", commands.url()))
            .bearer_auth(token)
            .json(&json!({"sku": sku, "name": "Lamp", "price": "12.50", "stock": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let field = |name: &str| body[name].as_str().unwrap().to_owned();
    (field("productId"), field("position"))
}

/// Waits until `GET url` answers 200; its body.
async fn read_back(http: &reqwest::Client, what: &str, url: String) -> Value {
    test_support::wait_for(what, || {
        let request = http.get(&url);
        async move {
            match test_support::respond(request).await {
                (StatusCode::OK, body) => Ok(body),
                (status, body) => Err(format!("{status}: {body}")),
            }
        }
    })
    .await
}

#[cfg_attr(
    no_postgres_binaries,
    ignore = "SKIPPED: no Postgres binaries (initdb, pg_ctl) on PATH, in pg_config --bindir or /usr/lib/postgresql: install them to run it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_views_database_is_down_reads_fail_fast_and_all_resumes_when_it_is_back() {
    let bin =
        test_support::postgres::installed_binaries().expect("build.rs found Postgres binaries; now they are gone");
    let binaries = build_binaries(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop"));
    let server = test_support::postgres::Server::start(&bin);
    let deployment = Deployment::new(&binaries, &server.url("postgres"));
    let mut processes = [
        deployment.projectors(&[]),
        deployment.query_api(&[]),
        deployment.command_api(&[]),
    ];
    for process in &mut processes {
        process.wait_until_ready().await;
    }
    let [projectors, queries, commands] = &processes;
    let http = reqwest::Client::new();
    let token = admin_token(&http, commands).await;
    let (before, at) = create_product(&http, commands, &token, "LAMP-BEFORE").await;
    let product_url = |id: &str, at: &str| format!("{}/products/{id}?minPosition={at}", queries.url());
    read_back(&http, "the product made before the outage", product_url(&before, &at)).await;

    server.stop_immediately();
    for attempt in 0..3 {
        let read = timed(http.get(format!("{}/products/{before}", queries.url()))).await;
        assert_fails_fast(&format!("GET /products/{{id}} #{attempt} while down"), &read);
    }
    let list = timed(http.get(format!("{}/products", queries.url()))).await;
    assert_fails_fast("GET /products while down", &list);
    let me = timed(http.get(format!("{}/me", queries.url())).bearer_auth(&token)).await;
    assert_fails_fast("GET /me while down", &me);
    assert_not_ready_but_live(&http, "query API", &queries.url()).await;
    assert_not_ready_but_live(&http, "projectors", &projectors.url()).await;
    let status = timed(http.get(format!("{}/projections", projectors.url()))).await;
    println!(
        "projectors GET /projections while down: {} in {:?}",
        status.status, status.took
    );
    assert!(status.took < FAIL_FAST, "GET /projections took {:?}", status.took);
    // The log is elsewhere: a write is acknowledged during the outage.
    let (during, at) = create_product(&http, commands, &token, "LAMP-DURING").await;

    server.restart();
    let restarted = Instant::now();
    read_back(
        &http,
        "the product acknowledged during the outage",
        product_url(&during, &at),
    )
    .await;
    println!("read back {:?} after the restart", restarted.elapsed());
    read_back(&http, "the product made before", product_url(&before, "0")).await;
    for process in &processes {
        let ready = timed(http.get(format!("{}/health/ready", process.url()))).await;
        assert_eq!(
            ready.status,
            StatusCode::OK,
            "{} ready again: {}",
            process.name,
            ready.body
        );
    }
    for process in &mut processes {
        assert!(process.running.exited().is_none(), "{} stopped", process.name);
    }
}

/// A read held up (here by a lock) longer than `VIEWS_STATEMENT_TIMEOUT_MS`
/// is cancelled by Postgres and answered 503 problem+json with
/// `Retry-After`, soon after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_held_up_past_the_statement_timeout_answers_503() {
    let views_url = test_support::postgres::fresh_database().await;
    let db = views::connect(&views_url, 2).await.unwrap();
    views::migrate(&db).await.unwrap();
    let binaries = build_binaries(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop"));
    let deployment = Deployment::new(&binaries, &views_url);
    let mut queries = deployment.query_api(&[("VIEWS_STATEMENT_TIMEOUT_MS", "500")]);
    queries.wait_until_ready().await;
    let http = reqwest::Client::new();
    let product = uuid::Uuid::new_v4();
    let lock = test_support::postgres::TableLock::take(&views_url, "products").await;
    let read = timed(http.get(format!("{}/products/{product}", queries.url()))).await;
    lock.release().await;
    assert_fails_fast("GET /products/{id} behind a lock", &read);
    assert!(
        read.took >= Duration::from_millis(500),
        "answered after {:?}, before the statement timeout",
        read.took
    );
    let after = timed(http.get(format!("{}/products/{product}", queries.url()))).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND, "{}", after.body);
}
