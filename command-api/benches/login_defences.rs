//! The login defences, measured: `cargo bench -p command-api --bench
//! login_defences`.
//!
//! A real server on a free port over a fresh embedded store, with the
//! default configuration, driven from the same process:
//!
//! 1. Wrong passwords for one account back to back from one address: how
//!    many are checked (401) before the first 429, and how long each kind
//!    of answer takes.
//! 2. 200 users logging in at once, each from its own loopback address
//!    (127.0.0.2 onwards, so no address budget is shared): how many are
//!    accepted (200) and refused (503, hashing queue full), the time to
//!    answer the refused ones and p50/p99 of the accepted ones. Three
//!    rounds.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use serde_json::json;

const USERS: usize = 200;
const ROUNDS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// A client whose connections come from 127.0.0.`n + 2`. It drops a
/// connection idle for 5 s, before the server closes it at 10 s
/// (`HTTP_IDLE_TIMEOUT_MS`): the registrations of all users can take longer
/// than that, and a login sent on a connection the server is closing at
/// that moment fails with no answer (as one did in a run of benches/all).
fn client(n: usize) -> reqwest::Client {
    let last = u8::try_from(n + 2).unwrap();
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// POSTs a login; its status and how long the answer took.
async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    (status, started.elapsed())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The `p` quantile of `samples`, in ms (nearest rank).
fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    ms(samples[index])
}

async fn run() {
    println!("## Login defences (embedded store, default configuration)\n");
    println!("{}\n", test_support::bench::machine());
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn event_store::EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let config = Config::with_defaults(([127, 0, 0, 1], 0).into(), SigningKey::generate().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let api = command_api::startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", api.address);
    let clients: Vec<_> = (0..USERS).map(client).collect();
    for (n, http) in clients.iter().enumerate() {
        let body = json!({"username": format!("user{n}"), "password": "bench-password", "displayName": "U"});
        let response = http
            .post(format!("{base}/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let victim = json!({"username": "victim", "password": "bench-password", "displayName": "V"});
    let response = clients[0]
        .post(format!("{base}/auth/register"))
        .json(&victim)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    guessing(&clients[0], &base).await;
    println!(
        "\n| round | logins at once | accepted (200) | refused (503) | other | 503 answered in, p50 / max ms | 200 p50 / p99 ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for round in 1..=ROUNDS {
        flood(round, &clients, &base).await;
    }
    shutdown.cancel();
    api.stopped().await.unwrap();
}

/// Wrong passwords for `victim` until the first 429.
async fn guessing(http: &reqwest::Client, base: &str) {
    let mut checked = Vec::new();
    let mut first_refusal = None;
    for _ in 0..100 {
        let (status, took) = login(http, base, "victim", "wrong-password").await;
        match status {
            401 => checked.push(took),
            429 => {
                first_refusal = Some(took);
                break;
            }
            other => panic!("a wrong password answered {other}"),
        }
    }
    let refusal = first_refusal.expect("no 429 within 100 wrong passwords");
    println!(
        "Wrong passwords for one account: {} answered 401 (p50 {:.1} ms), then 429 in {:.2} ms.",
        checked.len(),
        percentile(&mut checked, 0.5),
        ms(refusal)
    );
}

/// Every user logs in at once, each from its own address.
async fn flood(round: usize, clients: &[reqwest::Client], base: &str) {
    let logins = clients
        .iter()
        .enumerate()
        .map(|(n, http)| async move { login(http, base, &format!("user{n}"), "bench-password").await });
    let answers = futures::future::join_all(logins).await;
    let (mut accepted, mut refused, mut other) = (Vec::new(), Vec::new(), 0);
    for (status, took) in answers {
        match status {
            200 => accepted.push(took),
            503 => refused.push(took),
            _ => other += 1,
        }
    }
    println!(
        "| {round} | {} | {} | {} | {other} | {:.1} / {:.1} | {:.0} / {:.0} |",
        clients.len(),
        accepted.len(),
        refused.len(),
        percentile(&mut refused, 0.5),
        percentile(&mut refused, 1.0),
        percentile(&mut accepted, 0.5),
        percentile(&mut accepted, 0.99),
    );
}
