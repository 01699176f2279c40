//! Command API benchmarks: `cargo bench -p command-api --bench command_api`.
//!
//! A real server on a free port over a fresh embedded store, driven by a
//! real HTTP client from the same process (so both share the machine):
//!
//! 1. Orders/s with p50 and p99 latency at 16 and 64 concurrent clients;
//!    baselines in the same run: `GET /health/live` through the same HTTP
//!    stack, and raw single-event appends to the store at the same
//!    concurrency. The events each phase appended are counted in the log
//!    (everything after the head it started from), so events/s is measured,
//!    not derived from orders/s; so are the store's reads during the orders
//!    phase (`SqliteEventStore::reads`), reported per order.
//! 2. Logins/s against a bare argon2id verify loop on every core, with the
//!    hasher the service uses (`auth::argon2id`, working memory reused), and
//!    for reference the `argon2` crate's own `verify_password` (working
//!    memory allocated anew each time).
//!
//! The orders and their two baselines take turns in slices ([`SLICES`]),
//! so that all three meet the same machine.
//!
//! Each row also gives the CPU time the whole process (server, client and
//! store) used: how many cores it kept busy, and per request. From them
//! the bench prints what 0.9x of the bare appends would ask of each order.
//!
//! `BENCH_SECONDS` sets each phase's length (default 10).
//!
//! `PROFILE_ORDERS=<clients>` (16 or 64) runs nothing but orders, for a
//! profiler to attach: 30 s at 16 clients (the log and the saga's ledger
//! grow as in the full run), then one phase at `<clients>`; it prints the
//! counts and exits. For example, a profile of the second part only:
//! `PROFILE_ORDERS=64 perf record -D 36000 -g --call-graph dwarf <bench executable> --bench`.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use command_api::auth::argon2id::Hasher;
use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use domain::account::Password;
use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, StreamFilter, StreamName};
use serde_json::json;

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let phase = Duration::from_secs(seconds);
    let profile_orders = std::env::var("PROFILE_ORDERS")
        .ok()
        .map(|clients| match clients.as_str() {
            "16" => 16,
            "64" => 64,
            _ => panic!("PROFILE_ORDERS is {clients:?}: 16 or 64 clients, the counts the bench runs"),
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(phase, profile_orders));
}

/// How many slices the HTTP baseline, the store baseline and the orders
/// are each cut into, taking turns: the machine is shared and its speed
/// drifts within a run, and slices that alternate meet the same drift, so
/// the ratio of the orders to their baselines holds where phases run one
/// after the other would each meet a different machine.
const SLICES: u32 = 5;

#[derive(Default)]
struct Measured {
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The CPU time the whole process used meanwhile: server, client and
    /// store together.
    cpu: Duration,
}

impl Measured {
    /// Adds the requests of another slice of the same phase.
    fn add(&mut self, slice: Measured) {
        self.count += slice.count;
        self.elapsed += slice.elapsed;
        self.latencies.extend(slice.latencies);
        self.cpu += slice.cpu;
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// The process's CPU time per second, in cores: 2.0 is two cores busy.
    fn cores_busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The process's CPU time per request, in microseconds.
    fn cpu_per_request(&self) -> f64 {
        self.cpu_per(self.count)
    }

    /// The process's CPU time per one of `n` things done meanwhile (events
    /// appended), in microseconds.
    fn cpu_per(&self, n: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / n as f64
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies.sort();
        let index = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// Runs every phase; with `profile_orders`, only orders at that many
/// clients (after a warm-up), then exits.
async fn run(phase: Duration, profile_orders: Option<usize>) {
    let machine = test_support::bench::machine();
    let folder = tempfile::tempdir().unwrap();
    let sqlite = event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap();
    let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
    let mut config = Config::with_defaults(([127, 0, 0, 1], 0).into(), SigningKey::generate().unwrap());
    config.admin = Some(("admin".to_owned(), "bench-admin-password".to_owned()));
    // Its customers place thousands of orders and pay none: measured is the
    // order path, not the limit's refusals.
    config.saga.max_unsettled = u32::MAX;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let api = command_api::startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", api.address);
    let http = reqwest::Client::builder().pool_max_idle_per_host(128).build().unwrap();

    let admin = login(&http, &base, "admin", "bench-admin-password").await;
    let mut products = Vec::new();
    for n in 0..20 {
        let body =
            json!({"sku": format!("BENCH-{n}"), "name": format!("Bench {n}"), "price": "9.99", "stock": 1_000_000_000});
        let created: serde_json::Value = http
            .post(format!("{base}/products"))
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
    for n in 0..64 {
        let body = json!({"username": format!("bench{n}"), "password": "bench-password", "displayName": "Bench"});
        http.post(format!("{base}/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        customers.push(login(&http, &base, &format!("bench{n}"), "bench-password").await);
    }

    println!("## Command API (embedded store)\n");
    println!("{machine}\n");
    let slice = phase / SLICES;
    println!(
        "Each phase runs {} s, in {SLICES} slices of {} ms that take turns with the slices of its baselines.\n",
        phase.as_secs(),
        slice.as_millis()
    );
    println!(
        "| measurement | clients | requests | per second | p50 ms | p99 ms | cores busy | CPU µs per request | ratio to baseline |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut appended_rows = Vec::new();
    for clients in [16, 64] {
        let health_request = |_: usize, _: usize| {
            let http = http.clone();
            let url = format!("{base}/health/live");
            async move {
                let response = http.get(url).send().await.unwrap();
                assert!(response.status().is_success());
            }
        };
        let order_request = |client: usize, n: usize| {
            let http = http.clone();
            let url = format!("{base}/orders");
            let token = customers[client % customers.len()].clone();
            let items: Vec<_> = (0..3)
                .map(|k| json!({"productId": products[(client * 7 + n * 3 + k) % products.len()], "quantity": 1}))
                .collect();
            async move {
                let body = json!({
                    "items": items,
                    "customer": {"phone": "0812345678"},
                    "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
                });
                let response = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
            }
        };
        let (mut health, mut appends, mut orders) = (Measured::default(), Measured::default(), Measured::default());
        let (mut append_events, mut order_events, mut order_reads) = (BTreeMap::new(), BTreeMap::new(), 0);
        if let Some(only) = profile_orders {
            if only != clients {
                continue;
            }
            let warm_up = load(16, Duration::from_secs(30), &order_request).await;
            println!("warm-up: {} orders at 16 clients in 30 s", warm_up.count);
            let profiled = load(clients, phase, &order_request).await;
            println!("profiled: {:.0} orders/s at {clients} clients", profiled.rate());
            std::process::exit(0);
        }
        for _ in 0..SLICES {
            health.add(load(clients, slice, &health_request).await);
            let before = store.head().await.unwrap();
            appends.add(append_load(Arc::clone(&store), clients, slice).await);
            add_counts(&mut append_events, appended(store.as_ref(), before).await);
            let before = store.head().await.unwrap();
            let reads_before = sqlite.reads();
            orders.add(load(clients, slice, &order_request).await);
            order_reads += sqlite.reads() - reads_before;
            add_counts(&mut order_events, appended(store.as_ref(), before).await);
        }
        row("GET /health/live (HTTP baseline)", clients, &mut health, None);
        row("store append, 1 event (store baseline)", clients, &mut appends, None);
        let ratio = format!(
            "{:.3}x of HTTP, {:.3}x of appends",
            orders.rate() / health.rate(),
            orders.rate() / appends.rate()
        );
        row("POST /orders, 3 lines, confirmed", clients, &mut orders, Some(ratio));
        appended_rows.push(Appended {
            clients,
            health_cpu: health.cpu_per_request(),
            appends,
            append_events,
            orders,
            order_events,
            order_reads,
        });
    }

    let logins = load(16, phase, |client, _| {
        let http = http.clone();
        let url = format!("{base}/auth/login");
        let body = json!({"username": format!("bench{}", client % 64), "password": "bench-password"});
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            assert!(response.status().is_success());
        }
    })
    .await;
    let hash = Hasher::default()
        .hash(&Password::parse("bench-password").unwrap())
        .unwrap();
    let mut verify = verify_loop(phase, {
        let hash = hash.clone();
        move || {
            let hash = hash.clone();
            let mut hasher = Hasher::default();
            move || hasher.verify("bench-password", &hash)
        }
    });
    let mut fresh = verify_loop(phase, move || {
        let hash = hash.clone();
        move || fresh_verify("bench-password", &hash)
    });
    let mut logins = logins;
    row(
        "bare argon2id verify, one thread per core (baseline)",
        num_cores(),
        &mut verify,
        None,
    );
    let ratio = format!("{:.2}x", fresh.rate() / verify.rate());
    row(
        "the same with the argon2 crate's verify_password (fresh working memory each time)",
        num_cores(),
        &mut fresh,
        Some(ratio),
    );
    let ratio = format!("{:.2}x", logins.rate() / verify.rate());
    row("POST /auth/login", 16, &mut logins, Some(ratio));

    println!("\nEvents appended, counted in the log (everything after the head each phase started from):\n");
    println!(
        "| phase | clients | events appended | events/s | per order | store reads per order | CPU µs per event | ratio to bare appends |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut notes = Vec::new();
    for Appended {
        clients,
        health_cpu,
        appends,
        append_events,
        orders,
        order_events,
        order_reads,
    } in appended_rows
    {
        let total = |events: &BTreeMap<String, usize>| events.values().sum::<usize>();
        let append_rate = total(&append_events) as f64 / appends.elapsed.as_secs_f64();
        let order_rate = total(&order_events) as f64 / orders.elapsed.as_secs_f64();
        let per_order = total(&order_events) as f64 / orders.count as f64;
        println!(
            "| store append, 1 event (store baseline) | {clients} | {} | {append_rate:.0} | | | {:.0} | 1.00x |",
            total(&append_events),
            appends.cpu_per(total(&append_events))
        );
        println!(
            "| POST /orders, 3 lines, confirmed | {clients} | {} | {order_rate:.0} | {per_order:.2} | {:.2} | {:.0} | {:.3}x |",
            total(&order_events),
            order_reads as f64 / orders.count as f64,
            orders.cpu_per(total(&order_events)),
            order_rate / append_rate
        );
        let by_type: Vec<String> = order_events.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        notes.push(format!(
            "- orders at {clients} clients appended {}.",
            by_type.join(", ")
        ));
        // What 0.9x of the bare appends would ask of each order if the
        // process had every core to itself.
        let orders_needed = 0.9 * append_rate / per_order;
        notes.push(format!(
            "- at {clients} clients, 0.9x of the bare appends is {orders_needed:.0} orders/s: at most {:.0} µs of CPU \
             per order on {} cores, against {:.0} µs used per order here (the process's CPU: server, client and \
             store; a bare `GET /health/live` used {:.0} µs, a bare append {:.0} µs).",
            num_cores() as f64 * 1e6 / orders_needed,
            num_cores(),
            orders.cpu_per_request(),
            health_cpu,
            appends.cpu_per_request()
        ));
    }
    println!("\n{}", notes.join("\n"));

    shutdown.cancel();
    api.stopped().await.unwrap();
}

/// One client count's phases, for the table of appended events.
struct Appended {
    clients: usize,
    /// The CPU time of a bare `GET /health/live`, in microseconds.
    health_cpu: f64,
    appends: Measured,
    append_events: BTreeMap<String, usize>,
    orders: Measured,
    order_events: BTreeMap<String, usize>,
    order_reads: u64,
}

fn row(name: &str, clients: usize, measured: &mut Measured, ratio: Option<String>) {
    let (p50, p99) = (measured.percentile(0.50), measured.percentile(0.99));
    println!(
        "| {name} | {clients} | {} | {:.0} | {p50:.2} | {p99:.2} | {:.2} | {:.0} | {} |",
        measured.count,
        measured.rate(),
        measured.cores_busy(),
        measured.cpu_per_request(),
        ratio.unwrap_or_else(|| "1.00x".to_owned())
    );
}

async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let body = json!({"username": username, "password": password});
    let answer: serde_json::Value = http
        .post(format!("{base}/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["accessToken"].as_str().unwrap().to_owned()
}

/// Runs `clients` loops of `request` for `phase`, timing each request.
async fn load<F, Fut>(clients: usize, phase: Duration, request: F) -> Measured
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let cpu_before = test_support::bench::process_cpu().unwrap();
    let started = Instant::now();
    let deadline = started + phase;
    let request = &request;
    let loops = (0..clients).map(|client| async move {
        let mut latencies = Vec::new();
        let mut n = 0;
        while Instant::now() < deadline {
            let sent = Instant::now();
            tokio::spawn(request(client, n)).await.unwrap();
            latencies.push(sent.elapsed());
            n += 1;
        }
        latencies
    });
    let latencies: Vec<Duration> = futures::future::join_all(loops).await.into_iter().flatten().collect();
    Measured {
        count: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
        cpu: test_support::bench::process_cpu().unwrap() - cpu_before,
    }
}

async fn append_load(store: Arc<dyn EventStore>, clients: usize, phase: Duration) -> Measured {
    let run = uuid::Uuid::new_v4().simple().to_string();
    load(clients, phase, |client, n| {
        let store = Arc::clone(&store);
        let stream = StreamName::new(format!("bench{run}-{client}")).unwrap();
        async move {
            let event = NewEvent {
                id: uuid::Uuid::now_v7(),
                event_type: "BenchEvent".to_owned(),
                data: serde_json::to_vec(&json!({"n": n})).unwrap(),
                metadata: EventMetadata {
                    correlation_id: uuid::Uuid::now_v7(),
                    trace_id: None,
                    causation_id: None,
                    user_id: None,
                    schema_version: 1,
                },
            };
            let expected = ExpectedRevision::after(n.checked_sub(1).map(|r| r as u64));
            store.append(&stream, expected, vec![event]).await.unwrap();
        }
    })
    .await
}

fn add_counts(total: &mut BTreeMap<String, usize>, counts: BTreeMap<String, usize>) {
    for (kind, n) in counts {
        *total.entry(kind).or_default() += n;
    }
}

/// The events appended after `before`, by type.
async fn appended(store: &dyn EventStore, before: Option<Position>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut after = before;
    loop {
        let batch = store.read_all(after, 10_000, &StreamFilter::all()).await.unwrap();
        let Some(last) = batch.last() else {
            return counts;
        };
        after = Some(last.position);
        for event in batch {
            *counts.entry(event.event_type).or_default() += 1;
        }
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One thread per core verifying the same password for `phase`, each with
/// the verifier `verifier` makes.
fn verify_loop<V, F>(phase: Duration, verifier: V) -> Measured
where
    V: Fn() -> F,
    F: FnMut() -> bool + Send + 'static,
{
    let cpu_before = test_support::bench::process_cpu().unwrap();
    let started = Instant::now();
    let deadline = started + phase;
    let threads: Vec<_> = (0..num_cores())
        .map(|_| {
            let mut verify = verifier();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let began = Instant::now();
                    assert!(verify());
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let latencies: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    Measured {
        count: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
        cpu: test_support::bench::process_cpu().unwrap() - cpu_before,
    }
}

/// `argon2`'s own verification, which allocates its working memory anew.
fn fresh_verify(password: &str, hash: &domain::account::PasswordHash) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    let parsed = PasswordHash::new(hash.as_phc()).unwrap();
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}
