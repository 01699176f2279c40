//! Memory of each service as its own process: `cargo bench -p shop --bench
//! memory`.
//!
//! Builds the release binaries, then deploys Shop as an operator does
//! (`test_support::deployment`: `command-api` with its saga, `projectors`,
//! `query-api`, each a process of its own, on a fresh embedded event store
//! file and a fresh Postgres views database) and reads each process's
//! resident memory from `/proc/<pid>/status`:
//!
//! - **idle**: `VmRSS` once all three are ready, 5 s after start-up;
//! - **under load**: for `BENCH_SECONDS` (default 20), 16 clients place
//!   orders of 3 lines over 20 products (`POST /orders`, each waiting for
//!   the saga's decision) while 16 others read products by id from the
//!   query API and the projectors follow the log; `VmRSS` at the end and
//!   `VmHWM`, the peak over the whole run.
//!
//! Targets (#15): under 30 MB idle and under 100 MB under load, per
//! service. Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres` (a database for the run,
//! dropped at the end).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::deployment::{ADMIN, Deployment, Process};
use test_support::postgres::Scratch;

const PRODUCTS: usize = 20;
const CLIENTS: usize = 16;

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let binaries = test_support::killable::build_bins(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let views = Scratch::create(&server, "shop_memory").await;
        let deployment = Deployment::new(&binaries, &views.url);
        run(&deployment, Duration::from_secs(seconds)).await;
        views.remove().await;
    });
}

/// One process's memory, in MiB, from `/proc/<pid>/status`, with its
/// threads and open files (each thread may hold a malloc arena, each
/// embedded-store connection its page cache).
#[derive(Clone, Copy)]
struct Memory {
    resident: f64,
    peak: f64,
    threads: usize,
    files: usize,
}

fn memory(process: &Process) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.running.id())).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap()
    };
    let files = std::fs::read_dir(format!("/proc/{}/fd", process.running.id()))
        .unwrap()
        .count();
    Memory {
        resident: field("VmRSS:") / 1024.0,
        peak: field("VmHWM:") / 1024.0,
        threads: field("Threads:") as usize,
        files,
    }
}

async fn run(deployment: &Deployment, phase: Duration) {
    let quiet = [("RUST_LOG", "warn"), ("MAX_UNSETTLED_ORDERS", "1000000")];
    let mut services = [
        deployment.command_api(&quiet),
        deployment.projectors(&quiet[..1]),
        deployment.query_api(&quiet[..1]),
    ];
    for service in &mut services {
        service.wait_until_ready().await;
    }
    let [commands, _, queries] = &services;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle: Vec<Memory> = services.iter().map(memory).collect();

    let http = reqwest::Client::new();
    let (products, customers) = prepare(&http, &commands.url()).await;
    let (orders, reads) = load(&http, &commands.url(), &queries.url(), &products, &customers, phase).await;
    let loaded: Vec<Memory> = services.iter().map(memory).collect();

    println!("## Memory per service\n");
    println!("{}\n", test_support::bench::machine());
    println!(
        "Each service a release-built process of its own (command API with its saga, projectors, query API) on an \
         embedded event store and Postgres views. Under load for {} s: {CLIENTS} clients placing orders of 3 lines \
         over {PRODUCTS} products ({orders} orders, {:.0}/s) and {CLIENTS} reading products by id ({reads} reads, \
         {:.0}/s), the projectors following.\n",
        phase.as_secs(),
        orders as f64 / phase.as_secs_f64(),
        reads as f64 / phase.as_secs_f64(),
    );
    println!(
        "| service | idle RSS, MiB | RSS at the end of the load, MiB | peak RSS, MiB | threads idle / loaded | open \
         files idle / loaded | targets |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for ((service, idle), loaded) in services.iter().zip(&idle).zip(&loaded) {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {} / {} | {} / {} | idle < 30, load < 100: {} |",
            service.name,
            idle.resident,
            loaded.resident,
            loaded.peak,
            idle.threads,
            loaded.threads,
            idle.files,
            loaded.files,
            if idle.resident < 30.0 && loaded.peak < 100.0 {
                "met"
            } else {
                "**not met**"
            }
        );
    }
}

/// The products orders are placed for, and a token per client.
async fn prepare(http: &reqwest::Client, commands: &str) -> (Vec<String>, Vec<String>) {
    let admin = login(http, commands, ADMIN.0, ADMIN.1).await;
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let body =
            json!({"sku": format!("MEM-{n}"), "name": format!("Memory {n}"), "price": "9.99", "stock": 1_000_000_000});
        let created: Value = http
            .post(format!("{commands}/products"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        products.push(created["productId"].as_str().unwrap().to_owned());
    }
    let mut customers = Vec::new();
    for n in 0..CLIENTS {
        let username = format!("memory{n}");
        let body = json!({"username": username, "password": "memory-password", "displayName": "Memory"});
        let response = http
            .post(format!("{commands}/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "registration: {}", response.status());
        customers.push(login(http, commands, &username, "memory-password").await);
    }
    (products, customers)
}

async fn login(http: &reqwest::Client, commands: &str, username: &str, password: &str) -> String {
    let answer: Value = http
        .post(format!("{commands}/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["accessToken"].as_str().unwrap().to_owned()
}

/// Orders and reads for `phase`; how many of each were answered.
async fn load(
    http: &reqwest::Client,
    commands: &str,
    queries: &str,
    products: &[String],
    customers: &[String],
    phase: Duration,
) -> (u64, u64) {
    let (orders, reads) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + phase;
    let mut clients = Vec::new();
    for (client, token) in customers.iter().enumerate() {
        let url = format!("{commands}/orders");
        let ordering = (http.clone(), url, token.clone(), products.to_vec());
        clients.push(tokio::spawn(place_orders(client, ordering, Arc::clone(&orders), until)));
        let url = format!("{queries}/products/{}", products[client % products.len()]);
        clients.push(tokio::spawn(read_product(http.clone(), url, Arc::clone(&reads), until)));
    }
    for client in clients {
        client.await.unwrap();
    }
    (orders.load(Ordering::Relaxed), reads.load(Ordering::Relaxed))
}

/// One client placing orders of 3 lines, each waiting for its answer,
/// until `until`.
async fn place_orders(
    client: usize,
    (http, url, token, products): (reqwest::Client, String, String, Vec<String>),
    orders: Arc<AtomicU64>,
    until: Instant,
) {
    let mut n = 0;
    while Instant::now() < until {
        let items: Vec<_> = (0..3)
            .map(|k| json!({"productId": products[(client * 7 + n * 3 + k) % products.len()], "quantity": 1}))
            .collect();
        let body = json!({
            "items": items,
            "customer": {"phone": "0812345678"},
            "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
        });
        let response = http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        orders.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

/// One client reading a product by id, each read waiting for its answer,
/// until `until`.
async fn read_product(http: reqwest::Client, url: String, reads: Arc<AtomicU64>, until: Instant) {
    while Instant::now() < until {
        let response = http.get(&url).send().await.unwrap();
        // A product read before the projectors have it: 404.
        assert!(matches!(response.status().as_u16(), 200 | 404), "{}", response.status());
        reads.fetch_add(1, Ordering::Relaxed);
    }
}
