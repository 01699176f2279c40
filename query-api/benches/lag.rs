//! Lag from an accepted command to its row being visible through the query
//! API: `cargo bench -p query-api --bench lag`.
//!
//! The whole system in this process (command API and saga over an
//! embedded store, projectors into Postgres views, the query API), driven
//! over HTTP. First the maximum order rate with 16 clients (the baseline),
//! then orders at half that rate: for each, the time from the `201` to the
//! order being readable at its position (`GET /orders/{id}?minPosition=…`).
//! Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `BENCH_SECONDS` (default 10).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(Duration::from_secs(seconds), &server));
}

fn order(products: &[String], n: usize) -> Value {
    json!({
        "items": [
            {"productId": products[n % products.len()], "quantity": 1},
            {"productId": products[(n * 7 + 3) % products.len()], "quantity": 1},
        ],
        "customer": {"phone": "0812345678"},
        "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
    })
}

async fn run(phase: Duration, server: &str) {
    let admin_db = sea_orm::Database::connect(server).await.unwrap();
    let name = format!("shop_bench_{}", uuid::Uuid::new_v4().simple());
    admin_db
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    let client = Arc::new(support::start(url.as_str()).await);

    let admin = client.login("admin", "admin-password").await;
    let mut products = Vec::new();
    for n in 0..20 {
        let (_, body) = client
            .command(
                "/products",
                Some(&admin),
                json!({"sku": format!("LAG-{n}"), "name": "Lag", "price": "1.00", "stock": 1_000_000_000}),
            )
            .await;
        products.push(body["productId"].as_str().unwrap().to_owned());
    }
    let mut tokens = Vec::new();
    for n in 0..16 {
        let username = format!("lag{n}");
        client
            .command(
                "/auth/register",
                None,
                json!({"username": username, "password": "password-123", "displayName": "Lag"}),
            )
            .await;
        tokens.push(client.login(&username, "password-123").await);
    }
    let products = Arc::new(products);

    // Baseline: the most orders 16 clients get accepted.
    let started = Instant::now();
    let deadline = started + phase;
    let loops = tokens.iter().cloned().enumerate().map(|(k, token)| {
        let (client, products) = (Arc::clone(&client), Arc::clone(&products));
        tokio::spawn(async move {
            let mut placed = 0;
            while Instant::now() < deadline {
                let (status, _) = client
                    .command("/orders", Some(&token), order(&products, k * 1000 + placed))
                    .await;
                assert_eq!(status, reqwest::StatusCode::CREATED);
                placed += 1;
            }
            placed
        })
    });
    let placed: usize = futures_join(loops).await.into_iter().sum();
    let max_rate = placed as f64 / started.elapsed().as_secs_f64();

    // Half that rate, each order read back at its position.
    let rate = max_rate / 2.0;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0;
    while started.elapsed() < phase {
        ticker.tick().await;
        let (client, products) = (Arc::clone(&client), Arc::clone(&products));
        let token = tokens[n % tokens.len()].clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = client
                .command("/orders", Some(&token), order(&products, 1_000_000 + n))
                .await;
            assert_eq!(status, reqwest::StatusCode::CREATED);
            let accepted = Instant::now();
            let url = format!(
                "{}/orders/{}?minPosition={}",
                client.queries,
                body["orderId"].as_str().unwrap(),
                body["position"].as_str().unwrap()
            );
            let response = client.http.get(url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            accepted.elapsed()
        }));
        n += 1;
    }
    let mut lags: Vec<Duration> = futures_join(tasks).await;
    lags.sort();
    let at = |p: f64| lags[((lags.len() as f64 * p).ceil() as usize).clamp(1, lags.len()) - 1].as_secs_f64() * 1000.0;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!("## Lag from an accepted order to the query API (Postgres views)\n");
    println!(
        "Machine: {} cores, {cpu}. Each phase runs {} s.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        phase.as_secs()
    );
    println!("| measurement | orders | orders/s | lag p50 ms | lag p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!("| maximum order rate, 16 clients (baseline) | {placed} | {max_rate:.0} | | |");
    println!(
        "| orders at half that rate, each read back at its position | {} | {:.0} | {:.1} | {:.1} |",
        lags.len(),
        lags.len() as f64 / phase.as_secs_f64(),
        at(0.50),
        at(0.99)
    );
}

async fn futures_join<T: Send + 'static>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
