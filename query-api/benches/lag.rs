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
//! First the maximum order rate (the baseline), on the same work as the lag
//! phases: each client places an order, reads it back at its position
//! (`GET /orders/{id}?minPosition=…`), then places its next, over
//! keep-alive connections; the most orders 16, 32 and 64 such clients get
//! confirmed and read back, then twice as many clients while the rate
//! still rises by more than 5% (up to 512), the highest. A closed loop cannot
//! build a queue, so that rate is one the system sustains. Then orders
//! arrive at 50% and at 90% of it, at a fixed pace whatever the answers,
//! each read back the same way: the lag is the time from the `201` to the
//! read's `200`. The lag's p99 over the first and the second half of each
//! phase shows whether a queue grew during it.
//!
//! Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres` (a database is created for
//! the run and dropped at the end); `BENCH_SECONDS` (default 10) per phase.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::postgres::Scratch;
use test_support::system as support;

const PRODUCTS: usize = 20;
/// The pause before reading again after a 503 (too many reads waiting, or
/// the views not there within the read wait). Counted in the lag.
const READ_BACKOFF: Duration = Duration::from_millis(20);

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
    system_runtime.block_on(database.remove());
}

/// The system, 20 products with ample stock, 32 customers' tokens, and the
/// views database created for the run.
async fn setup(server: &str) -> (support::System, Vec<String>, Vec<String>, Scratch) {
    let database = Scratch::create(server, "shop_bench").await;
    let system = support::start(&database.url).await;
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
    (system, products, tokens, database)
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

    /// Reads order `order_id` back at `position` until the query API has
    /// it; how many reads answered 503 (the views had not reached the
    /// position within the read wait) first.
    async fn read_back(&self, token: &str, order_id: &str, position: &str) -> usize {
        let url = format!("{}/orders/{order_id}?minPosition={position}", self.queries);
        let mut retries = 0;
        loop {
            let response = self.http.get(&url).bearer_auth(token).send().await.unwrap();
            match response.status() {
                reqwest::StatusCode::OK => return retries,
                // Past the query API's cap on waiting reads: back off as a
                // client would, instead of spinning and adding load of its own.
                reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    retries += 1;
                    tokio::time::sleep(READ_BACKOFF).await;
                }
                status => panic!("reading the order back answered {status}"),
            }
        }
    }

    /// The most orders `clients` closed loops get placed and read back in
    /// `phase`: the orders, the rate, and how many were answered `202`
    /// (not decided within the command API's wait).
    async fn maximum(&self, clients: usize, phase: Duration, first: usize) -> (usize, f64, usize) {
        let started = Instant::now();
        let deadline = started + phase;
        let loops: Vec<_> = (0..clients)
            .map(|k| {
                let load = self.clone();
                tokio::spawn(async move {
                    let token = load.tokens[k % load.tokens.len()].clone();
                    let (mut placed, mut pending) = (0, 0);
                    while Instant::now() < deadline {
                        let (order_id, position, was_pending) =
                            load.place(&token, first + k * 1_000_000 + placed).await;
                        load.read_back(&token, &order_id, &position).await;
                        (placed, pending) = (placed + 1, pending + usize::from(was_pending));
                    }
                    (placed, pending)
                })
            })
            .collect();
        let (mut placed, mut pending) = (0, 0);
        for task in loops {
            let (placed_by_one, pending_of_one) = task.await.unwrap();
            (placed, pending) = (placed + placed_by_one, pending + pending_of_one);
        }
        (placed, placed as f64 / started.elapsed().as_secs_f64(), pending)
    }

    /// Orders arriving at `rate` for `phase`, each read back at its
    /// position: the lags, the rate achieved, the orders still pending when
    /// answered, and the reads that waited past the query API's read wait
    /// (answered 503, then asked again).
    async fn lags(&self, rate: f64, phase: Duration, first: usize) -> Lags {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let started = Instant::now();
        let mut tasks = Vec::new();
        let mut n = 0;
        while started.elapsed() < phase {
            ticker.tick().await;
            let load = self.clone();
            let token = self.tokens[n % self.tokens.len()].clone();
            let second_half = started.elapsed() >= phase / 2;
            tasks.push(tokio::spawn(async move {
                let (order_id, position, pending) = load.place(&token, first + n).await;
                let accepted = Instant::now();
                let retries = load.read_back(&token, &order_id, &position).await;
                (accepted.elapsed(), pending, retries, second_half)
            }));
            n += 1;
        }
        let sent = started.elapsed();
        let mut lags = Lags::default();
        for task in tasks {
            let (lag, was_pending, retries, second_half) = task.await.unwrap();
            lags.all.push(lag);
            lags.halves[usize::from(second_half)].push(lag);
            lags.pending += usize::from(was_pending);
            lags.retried += usize::from(retries > 0);
        }
        lags.all.sort();
        lags.halves.iter_mut().for_each(|half| half.sort());
        lags.rate = n as f64 / sent.as_secs_f64();
        lags
    }
}

/// One lag phase: every order's lag (sorted), those of the orders sent in
/// the first and the second half of the phase, the rate achieved, the
/// orders answered `202`, the reads answered `503` at least once.
#[derive(Default)]
struct Lags {
    all: Vec<Duration>,
    halves: [Vec<Duration>; 2],
    rate: f64,
    pending: usize,
    retried: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

async fn measure(load: Load, phase: Duration) {
    let machine = test_support::bench::machine();
    // 16, 32 and 64 clients, then twice as many while the rate still rises
    // by more than 5% over the best so far, up to 512. A phase where an
    // order was answered `202` overloaded the system: it does not count, and
    // ends the search.
    let (mut maxima, mut maximum, mut clients) = (Vec::new(), 0.0_f64, 16);
    loop {
        let (placed, rate, pending) = load.maximum(clients, phase, maxima.len() * 1_000_000_000).await;
        maxima.push((clients, placed, rate, pending));
        let rising = rate > maximum * 1.05;
        if pending > 0 {
            break;
        }
        maximum = maximum.max(rate);
        if clients >= 512 || (clients >= 64 && !rising) {
            break;
        }
        clients *= 2;
    }
    assert!(maximum > 0.0, "every phase of the maximum had orders answered 202");
    let mut rows: Vec<String> = maxima
        .iter()
        .map(|&(clients, placed, rate, pending)| {
            let label = match pending {
                0 if rate == maximum => " (baseline: the highest)".to_owned(),
                0 => String::new(),
                _ => format!(" ({pending} answered `202`: not counted)"),
            };
            format!("| maximum order rate, each read back, {clients} clients{label} | {placed} | {rate:.0} | | |")
        })
        .collect();
    let mut notes = Vec::new();
    for (n, share) in [0.5, 0.9].into_iter().enumerate() {
        let lags = load.lags(maximum * share, phase, (10 + n) * 1_000_000_000).await;
        let percent = share * 100.0;
        rows.push(format!(
            "| orders at {percent:.0}% of the maximum, each read back at its position | {} | {:.0} | {:.1} | {:.1} |",
            lags.all.len(),
            lags.rate,
            percentile(&lags.all, 0.50),
            percentile(&lags.all, 0.99)
        ));
        notes.push(format!(
            "- at {percent:.0}%: lag p99 {:.1} ms over the orders sent in the first half of the phase, {:.1} ms over the second half; {} orders answered `202` (still pending after the command API's wait); {} reads answered `503` (the views had not reached the position within the read wait) and were asked again, the lag counting until the `200`.",
            percentile(&lags.halves[0], 0.99),
            percentile(&lags.halves[1], 0.99),
            lags.pending,
            lags.retried
        ));
    }
    println!("## Lag from an accepted order to the query API (Postgres views)\n");
    println!("{machine}\n");
    println!("Each phase runs {} s.\n", phase.as_secs());
    println!("| measurement | orders | orders/s | lag p50 ms | lag p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!("{row}");
    }
    println!("\n{}", notes.join("\n"));
}
