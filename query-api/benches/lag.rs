//! Lag from an accepted command to its row being visible through the query
//! API: `cargo bench -p query-api --bench lag`.
//!
//! The whole system in this process (command API and saga over an
//! embedded store, projectors into Postgres views, the query API), driven
//! over HTTP by a load that runs on a runtime of its own, as a client in
//! another process would: the system keeps its own workers, one per core,
//! as in the `shop` binary. Orders have 2 lines over 20 products, picked at
//! random for each order.
//!
//! First the maximum order rate (the baseline): the most orders 16 and 32
//! clients get confirmed, each sending its next order when the last is
//! answered, over keep-alive connections; the higher of the two. Then orders arrive at 50% and at
//! 90% of that maximum, at a fixed pace whatever the answers: for each, the
//! time from the `201` to the order being readable at its position
//! (`GET /orders/{id}?minPosition=…`).
//!
//! Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres` (a database is created for
//! the run and dropped at the end); `BENCH_SECONDS` (default 10) per phase.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const PRODUCTS: usize = 20;

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let system_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (system, products, tokens, database) = system_runtime.block_on(setup(&server));
    let load = Load {
        http: reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap(),
        commands: system.commands.clone(),
        queries: system.queries.clone(),
        products: Arc::new(products),
        tokens: Arc::new(tokens),
    };
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(measure(load, Duration::from_secs(seconds)));
    drop(system);
    system_runtime.block_on(async {
        let admin = sea_orm::Database::connect(&server).await.unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE {database} WITH (FORCE)"))
            .await
            .unwrap();
    });
}

/// The system, 20 products with ample stock, 32 customers' tokens, and the
/// views database created for the run.
async fn setup(server: &str) -> (support::System, Vec<String>, Vec<String>, String) {
    let admin_db = sea_orm::Database::connect(server).await.unwrap();
    let name = format!("shop_bench_{}", uuid::Uuid::new_v4().simple());
    admin_db
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    let system = support::start(url.as_str()).await;
    let admin = system.login("admin", "admin-password").await;
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let (_, body) = system
            .command(
                "/products",
                Some(&admin),
                json!({"sku": format!("LAG-{n}"), "name": "Lag", "price": "1.00", "stock": 1_000_000_000}),
            )
            .await;
        products.push(body["productId"].as_str().unwrap().to_owned());
    }
    let mut tokens = Vec::new();
    for n in 0..32 {
        tokens.push(system.customer(&format!("lag{n}")).await.0);
    }
    (system, products, tokens, name)
}

#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    commands: String,
    queries: String,
    products: Arc<Vec<String>>,
    tokens: Arc<Vec<String>>,
}

/// splitmix64 of `n`: the products of order `n`.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Load {
    /// Two different products, at random for order `n`.
    fn order(&self, n: usize) -> Value {
        let r = mix(n as u64) as usize;
        let (first, second) = (
            r % PRODUCTS,
            (r % PRODUCTS + 1 + (r / PRODUCTS) % (PRODUCTS - 1)) % PRODUCTS,
        );
        json!({
            "items": [
                {"productId": self.products[first], "quantity": 1},
                {"productId": self.products[second], "quantity": 1},
            ],
            "customer": {"phone": "0812345678"},
            "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
        })
    }

    /// Places order `n` for customer `token`: its id and position, and
    /// whether it was still pending when the command API stopped waiting
    /// for the saga (`202`).
    async fn place(&self, token: &str, n: usize) -> (String, String, bool) {
        let response = self
            .http
            .post(format!("{}/orders", self.commands))
            .bearer_auth(token)
            .json(&self.order(n))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            [reqwest::StatusCode::CREATED, reqwest::StatusCode::ACCEPTED].contains(&status),
            "{status}"
        );
        let body: Value = response.json().await.unwrap();
        (
            body["orderId"].as_str().unwrap().to_owned(),
            body["position"].as_str().unwrap().to_owned(),
            status == reqwest::StatusCode::ACCEPTED,
        )
    }

    /// The most orders `clients` closed loops get confirmed in `phase`.
    async fn maximum(&self, clients: usize, phase: Duration, first: usize) -> (usize, f64) {
        let started = Instant::now();
        let deadline = started + phase;
        let loops: Vec<_> = (0..clients)
            .map(|k| {
                let load = self.clone();
                tokio::spawn(async move {
                    let token = load.tokens[k % load.tokens.len()].clone();
                    let mut placed = 0;
                    while Instant::now() < deadline {
                        let (_, _, pending) = load.place(&token, first + k * 1_000_000 + placed).await;
                        assert!(!pending, "an order was not decided within the command API's wait");
                        placed += 1;
                    }
                    placed
                })
            })
            .collect();
        let mut placed = 0;
        for task in loops {
            placed += task.await.unwrap();
        }
        (placed, placed as f64 / started.elapsed().as_secs_f64())
    }

    /// Orders arriving at `rate` for `phase`, each read back at its
    /// position: the lags, the rate achieved, the orders still pending when
    /// answered, and the reads that waited past the query API's read wait
    /// (answered 503, then asked again).
    async fn lags(&self, rate: f64, phase: Duration, first: usize) -> (Vec<Duration>, f64, usize, usize) {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let started = Instant::now();
        let mut tasks = Vec::new();
        let mut n = 0;
        while started.elapsed() < phase {
            ticker.tick().await;
            let load = self.clone();
            let token = self.tokens[n % self.tokens.len()].clone();
            tasks.push(tokio::spawn(async move {
                let (order_id, position, pending) = load.place(&token, first + n).await;
                let accepted = Instant::now();
                let url = format!("{}/orders/{order_id}?minPosition={position}", load.queries);
                let mut retries = 0;
                loop {
                    let response = load.http.get(&url).bearer_auth(&token).send().await.unwrap();
                    match response.status() {
                        reqwest::StatusCode::OK => break,
                        reqwest::StatusCode::SERVICE_UNAVAILABLE => retries += 1,
                        status => panic!("reading the order back answered {status}"),
                    }
                }
                (accepted.elapsed(), pending, retries)
            }));
            n += 1;
        }
        let sent = started.elapsed();
        let (mut lags, mut pending, mut retried) = (Vec::new(), 0, 0);
        for task in tasks {
            let (lag, was_pending, retries) = task.await.unwrap();
            lags.push(lag);
            pending += usize::from(was_pending);
            retried += usize::from(retries > 0);
        }
        lags.sort();
        (lags, n as f64 / sent.as_secs_f64(), pending, retried)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

async fn measure(load: Load, phase: Duration) {
    let mut rows = Vec::new();
    let mut maximum: f64 = 0.0;
    for (n, clients) in [16, 32].into_iter().enumerate() {
        let (placed, rate) = load.maximum(clients, phase, n * 100_000_000).await;
        rows.push(format!(
            "| maximum order rate, {clients} clients (baseline: the higher) | {placed} | {rate:.0} | | |"
        ));
        maximum = maximum.max(rate);
    }
    let mut notes = Vec::new();
    for (n, share) in [0.5, 0.9].into_iter().enumerate() {
        let (lags, achieved, pending, retried) =
            load.lags(maximum * share, phase, 1_000_000_000 + n * 100_000_000).await;
        rows.push(format!(
            "| orders at {:.0}% of the maximum, each read back at its position | {} | {achieved:.0} | {:.1} | {:.1} |",
            share * 100.0,
            lags.len(),
            percentile(&lags, 0.50),
            percentile(&lags, 0.99)
        ));
        notes.push(format!(
            "- at {:.0}%: {pending} orders answered `202` (still pending after the command API's wait), {retried} reads answered `503` (the views had not reached the position within the read wait) and were asked again; the lag counts until the `200`.",
            share * 100.0
        ));
    }

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
    for row in rows {
        println!("{row}");
    }
    println!("\n{}", notes.join("\n"));
}
