//! Fault injection (#11): Shop's services as separate real processes — two
//! command API replicas, each with its order saga, the projectors with
//! their admin API, the query API — on one embedded event store file and one SQLite views
//! database, killed with SIGKILL at random points and started again while
//! six customers register, order from a few products (two of them scarce,
//! so orders are rejected and partial reservations released, one created
//! only during the run) and cancel some confirmed orders, and an admin
//! replays projections.
//!
//! Every answer a customer got is recorded; a request that failed because a
//! process was down is sent again (orders with the same `Idempotency-Key`)
//! or counted as unacknowledged. Once the faults stop and every process
//! runs again, within deadlines:
//!
//! 1. every acknowledged order is in the views with the outcome it was
//!    acknowledged with (a cancel acknowledged or maybe made allows
//!    `cancelled`; a `202 pending` must end confirmed or rejected);
//! 2. no order stays pending;
//! 3. each product's available stock is its stock less the quantities of
//!    its confirmed (not cancelled) lines;
//! 4. the views equal a fresh replay of the log: one more projectors
//!    process on an empty views database catches up to the log's head, and
//!    every view table (not checkpoints, leases or migrations) holds the
//!    same rows in both.
//!
//! Where the kills land is random, seeded: the seed is printed, and
//! `FAULT_SEED=<seed>` replays the same schedule and choices (the timing of
//! requests against kills still varies). The whole run is bounded by
//! [`BOUND`]; every wait has a deadline.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::Position;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use test_support::binary::free_address;
use test_support::killable::{Service, build_binaries};
use test_support::{order_body, tokens, views_rows};
use tokio::time::{Instant, sleep, timeout};

/// The whole run, from the first process started to the last comparison.
const BOUND: Duration = Duration::from_secs(130);
/// How long processes are killed and restarted while customers order.
const FAULTS: Duration = Duration::from_secs(40);
/// How long, after the faults stop, a customer keeps retrying the request
/// it was making before counting it unacknowledged.
const DRAIN: Duration = Duration::from_secs(15);
/// How long a process may take to answer `/health/live` after a start.
const START: Duration = Duration::from_secs(20);
/// How long the system may take to settle (saga decisions, projections)
/// once the faults stop, for each group of invariants.
const SETTLE: Duration = Duration::from_secs(25);
const CUSTOMERS: usize = 6;
/// The products (SKU, stock): two scarce, so orders are rejected (and a
/// reservation made for another line of the order released), two plenty.
const PRODUCTS: [(&str, i64); 4] = [
    ("SCARCE-1", 6),
    ("SCARCE-2", 15),
    ("PLENTY-1", 5_000),
    ("PLENTY-2", 5_000),
];
/// A product customers order before it exists (the saga rejects those
/// orders: no such product), created at a random moment during the faults:
/// a saga restarting from a checkpoint older than such a rejection then
/// reserves it for an order already rejected, and must release it (#11,
/// point 1).
const LATE: (&str, i64) = ("LATE-1", 40);
/// The percentage of confirmed orders their customer cancels.
const CANCEL_PERCENT: u64 = 35;
/// The percentage of acknowledged orders their customer reads back from
/// the query API at the acknowledged position (read-your-writes).
const READ_BACK_PERCENT: u64 = 25;
/// View tables that are bookkeeping, not views: not compared.
const BOOKKEEPING: [&str; 4] = [
    "checkpoints",
    "projection_generations",
    "projection_leases",
    "seaql_migrations",
];
const ADMIN: (&str, &str) = ("admin", "admin-password");
const PASSWORD: &str = "password-123";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_outcomes_survive_sigkill_and_the_views_equal_a_replay() {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .filter(|seed| !seed.is_empty())
        .map(|seed| seed.parse::<u64>().expect("FAULT_SEED is a number"))
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.unwrap().as_nanos() as u64
        });
    println!("fault injection seed {seed}: replay with FAULT_SEED={seed}");
    let built = std::time::Instant::now();
    let binaries = build_binaries(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop"));
    println!("binaries checked or built in {:.1?}", built.elapsed());
    let folder = tempfile::tempdir().unwrap();
    let run = timeout(BOUND, scenario(seed, &binaries, folder.path())).await;
    if run.is_err() {
        let logs = ["projectors", "query-api", "command-api", "command-api-2", "replayer"]
            .map(|name| std::fs::read_to_string(folder.path().join(format!("{name}.log"))).unwrap_or_default());
        let tails = logs.map(|log| {
            log.chars()
                .rev()
                .take(2_000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        });
        panic!(
            "seed {seed}: the run took longer than {BOUND:?}; logs' ends:\n{}",
            tails.join("\n---\n")
        );
    }
}

async fn scenario(seed: u64, binaries: &Path, folder: &Path) {
    let mut system = System::start(binaries, folder).await;
    let http = reqwest::Client::new();
    let admin = login(&http, &system.commands(), ADMIN.0, ADMIN.1, Instant::now() + START)
        .await
        .expect("the admin logs in");
    let mut products = create_products(&http, &system.commands(), &admin).await;
    let late_sku = domain::product::Sku::parse(LATE.0).unwrap();
    let late_id = domain::ids::ProductId::for_sku(&late_sku).to_string();
    let started = Instant::now();
    let give_up = started + FAULTS + DRAIN;
    let stop = Arc::new(AtomicBool::new(false));
    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|n| {
            let customer = Customer {
                http: http.clone(),
                commands: system.commands_for(n),
                queries: system.queries(),
                name: format!("customer-{n}-{seed}"),
                products: products
                    .iter()
                    .map(|(id, _)| id.clone())
                    .chain([late_id.clone()])
                    .collect(),
                rng: Rng::new(seed ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9)),
                stop: Arc::clone(&stop),
                give_up,
            };
            tokio::spawn(customer.run())
        })
        .collect();
    let replays = tokio::spawn(replay_now_and_then(
        http.clone(),
        system.projectors_admin(),
        admin.clone(),
        Rng::new(seed.rotate_left(17)),
        Arc::clone(&stop),
    ));
    let late = tokio::spawn(create_late(
        http.clone(),
        system.commands(),
        admin.clone(),
        Rng::new(seed.rotate_left(31)).millis(3_000, FAULTS.as_millis() as u64 - 10_000),
        give_up,
    ));
    let kills = system.inject_faults(Rng::new(seed), started + FAULTS).await;
    stop.store(true, Ordering::Relaxed);
    let mut book = Book::default();
    for customer in customers {
        let record = timeout(DRAIN + Duration::from_secs(25), customer)
            .await
            .expect("a customer stops retrying once DRAIN has passed")
            .unwrap();
        book.merge(record);
    }
    let late = late.await.unwrap().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(late, late_id, "the product's id is derived from its SKU");
    products.push((late_id, LATE.1));
    let accepted_replays = replays.await.unwrap().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    system.ensure_running().await;
    println!(
        "seed {seed}: kills {kills:?}; {} acknowledged orders ({} confirmed, {} rejected, {} pending), {} cancels acknowledged, {} maybe, {} orders unacknowledged, {accepted_replays} replays accepted",
        book.orders.len(),
        book.count(Placed::Confirmed),
        book.count(Placed::Rejected),
        book.count(Placed::Pending),
        book.orders.iter().filter(|o| o.cancel == Cancel::Acknowledged).count(),
        book.orders.iter().filter(|o| o.cancel == Cancel::Maybe).count(),
        book.unacknowledged,
    );
    assert!(
        book.unexpected.is_empty(),
        "seed {seed}: unexpected answers: {:#?}",
        book.unexpected
    );
    assert!(
        kills.values().sum::<u32>() >= 5,
        "seed {seed}: too few kills to mean anything: {kills:?}"
    );
    assert!(
        book.count(Placed::Confirmed) > 0 && book.count(Placed::Rejected) > 0,
        "seed {seed}: the run confirmed and rejected orders"
    );
    assert!(
        accepted_replays > 0,
        "seed {seed}: at least one replay was started during the faults"
    );

    let phase = Instant::now();
    let settled = settle(&system, &book, &products).await;
    assert!(settled.is_ok(), "seed {seed}: {}", settled.unwrap_err());
    println!(
        "invariants 1-3 held {:.1?} after the customers stopped",
        phase.elapsed()
    );
    let phase = Instant::now();
    let compared = compare_with_fresh_replay(&system, &book, &products).await;
    assert!(compared.is_ok(), "seed {seed}: {}", compared.unwrap_err());
    println!("the views equalled a fresh replay {:.1?} after that", phase.elapsed());
}

/// The three services over one log and one views database, on fixed
/// addresses so clients find a restarted process where the killed one was.
struct System {
    services: Vec<Service>,
    binaries: std::path::PathBuf,
    folder: std::path::PathBuf,
    store_url: String,
    views_url: String,
}

impl System {
    const PROJECTORS: usize = 0;
    const QUERIES: usize = 1;
    const COMMANDS: usize = 2;
    const REPLICA: usize = 3;

    async fn start(binaries: &Path, folder: &Path) -> Self {
        let store_url = format!("sqlite://{}", folder.join("events.db").display());
        let views_url = format!("sqlite://{}?mode=rwc", folder.join("views.db").display());
        let public_key = tokens::server_key().public_key_pem();
        let [projectors, queries, commands, replica] = [(); 4].map(|()| free_address());
        let (projectors_addr, queries_addr, commands_addr, replica_addr) = (
            projectors.to_string(),
            queries.to_string(),
            commands.to_string(),
            replica.to_string(),
        );
        let commands_env = |listen: &str| {
            [
                ("EVENT_STORE_URL", store_url.clone()),
                ("COMMAND_API_ADDR", listen.to_owned()),
                ("JWT_PRIVATE_KEY", tokens::SERVER_KEY_PEM.to_owned()),
                ("ADMIN_USERNAME", ADMIN.0.to_owned()),
                ("ADMIN_PASSWORD", ADMIN.1.to_owned()),
                // Short, so some orders are answered 202 pending while a
                // saga catches up after a restart.
                ("ORDER_WAIT_MS", "100".to_owned()),
                // Customers order far more than the default limit of
                // unpaid orders and pay none.
                ("MAX_UNSETTLED_ORDERS", "10000".to_owned()),
            ]
        };
        let (commands_env, replica_env) = (commands_env(&commands_addr), commands_env(&replica_addr));
        let projectors_env = projectors_env(&store_url, &views_url, &projectors_addr, &public_key);
        let services = vec![
            service(binaries, folder, "projectors", projectors, &borrowed(&projectors_env)),
            service(
                binaries,
                folder,
                "query-api",
                queries,
                &[
                    ("VIEWS_DATABASE_URL", &views_url),
                    ("VIEWS_POOL_SIZE", "2"),
                    ("QUERY_API_ADDR", &queries_addr),
                    ("JWT_PUBLIC_KEY", &public_key),
                ],
            ),
            service(binaries, folder, "command-api", commands, &borrowed(&commands_env)),
            // A second replica, with a saga of its own, as by default.
            Service::new(
                "command-api-2",
                binaries.join("command-api"),
                &[],
                &borrowed(&replica_env),
                replica,
                folder.join("command-api-2.log"),
            ),
        ];
        let mut system = Self {
            services,
            binaries: binaries.to_path_buf(),
            folder: folder.to_path_buf(),
            store_url,
            views_url,
        };
        // The projectors migrate the views, which the query API requires.
        system.ensure_running().await;
        system
    }

    fn commands(&self) -> String {
        format!("http://{}", self.services[Self::COMMANDS].address)
    }

    /// The command API replica customer `n` talks to.
    fn commands_for(&self, n: usize) -> String {
        let replica = [Self::COMMANDS, Self::REPLICA][n % 2];
        format!("http://{}", self.services[replica].address)
    }

    fn queries(&self) -> String {
        format!("http://{}", self.services[Self::QUERIES].address)
    }

    fn projectors_admin(&self) -> String {
        format!("http://{}", self.services[Self::PROJECTORS].address)
    }

    /// Starts, in order, every service that does not run.
    async fn ensure_running(&mut self) {
        for service in &mut self.services {
            if !service.is_running() {
                service.start(START).await;
            }
        }
    }

    /// Until `until`: now and then SIGKILL one service (sometimes all
    /// at once), leave it down a moment, start it again. How many
    /// times each was killed.
    async fn inject_faults(&mut self, mut rng: Rng, until: Instant) -> BTreeMap<String, u32> {
        let mut kills = BTreeMap::new();
        let begun = Instant::now();
        while Instant::now() + Duration::from_secs(1) < until {
            sleep(rng.millis(700, 2_500)).await;
            let victims: Vec<usize> = if rng.percent(15) {
                vec![Self::PROJECTORS, Self::QUERIES, Self::COMMANDS, Self::REPLICA]
            } else {
                vec![rng.below(self.services.len() as u64) as usize]
            };
            for &victim in &victims {
                let service = &mut self.services[victim];
                service.kill();
                *kills.entry(service.name.clone()).or_insert(0) += 1;
                println!("{:>6.2} s: kill -9 {}", begun.elapsed().as_secs_f64(), service.name);
            }
            sleep(rng.millis(0, 1_500)).await;
            self.ensure_running().await;
        }
        kills
    }
}

fn projectors_env<'a>(
    store_url: &'a str,
    views_url: &'a str,
    listen: &'a str,
    public_key: &'a str,
) -> Vec<(&'static str, String)> {
    vec![
        ("EVENT_STORE_URL", store_url.to_owned()),
        ("VIEWS_DATABASE_URL", views_url.to_owned()),
        ("VIEWS_POOL_SIZE", "2".to_owned()),
        ("PROJECTORS_ADMIN_ADDR", listen.to_owned()),
        ("PROJECTORS_LEASE_MS", "1000".to_owned()),
        ("JWT_PUBLIC_KEY", public_key.to_owned()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn service(binaries: &Path, folder: &Path, name: &str, address: std::net::SocketAddr, env: &[(&str, &str)]) -> Service {
    Service::new(
        name,
        binaries.join(name),
        &[],
        env,
        address,
        folder.join(format!("{name}.log")),
    )
}

type Tables = BTreeMap<String, Vec<Value>>;

/// Waits until every invariant but the replay's holds in the shared views,
/// once they have caught up to the log's head.
async fn settle(system: &System, book: &Book, products: &[(String, i64)]) -> Result<(), String> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + SETTLE;
    loop {
        let checked = async {
            caught_up(&http, &system.projectors_admin()).await?;
            let rows = views_rows::snapshot(&system.views_url, &BOOKKEEPING).await?;
            book.check(&rows, products)
        };
        let last = match checked.await {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(format!("{SETTLE:?} after the faults stopped: {last}"));
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Starts one more projectors process on an empty views database, waits
/// until both it and the shared views have caught up to the same head, and
/// compares every view table; checks the invariants again on those rows.
async fn compare_with_fresh_replay(system: &System, book: &Book, products: &[(String, i64)]) -> Result<(), String> {
    let address = free_address();
    let listen = address.to_string();
    let views_url = format!("sqlite://{}?mode=rwc", system.folder.join("replayed.db").display());
    let public_key = tokens::server_key().public_key_pem();
    let env = projectors_env(&system.store_url, &views_url, &listen, &public_key);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut replayer = Service::new(
        "replayer",
        system.binaries.join("projectors"),
        &[],
        &env,
        address,
        system.folder.join("replayer.log"),
    );
    replayer.start(START).await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + SETTLE;
    loop {
        let compared = async {
            let live_head = caught_up(&http, &system.projectors_admin()).await?;
            let fresh_head = caught_up(&http, &format!("http://{address}")).await?;
            if live_head != fresh_head {
                return Err(format!("the log moved: heads {live_head} and {fresh_head}"));
            }
            let live = views_rows::snapshot(&system.views_url, &BOOKKEEPING).await?;
            let fresh = views_rows::snapshot(&views_url, &BOOKKEEPING).await?;
            if live != fresh {
                return Err(format!(
                    "the views differ from a fresh replay of the log up to {live_head}:\n{}",
                    differences(&live, &fresh)
                ));
            }
            book.check(&live, products)
        };
        let last = match compared.await {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(format!("{last}\n{}", replayer.log_tail()));
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// The log's head, once every projection of the projectors whose admin
/// API is at `admin` has reached it.
async fn caught_up(http: &reqwest::Client, admin: &str) -> Result<Position, String> {
    let (status, body) = send(http.get(format!("{admin}/projections"))).await?;
    if status != StatusCode::OK {
        return Err(format!("{admin}/projections: {status} {body}"));
    }
    let parse = |value: &Value| value.as_str().and_then(|text| text.parse::<Position>().ok());
    let head = parse(&body["head"]).ok_or_else(|| format!("no head: {body}"))?;
    let projections = body["projections"].as_array().cloned().unwrap_or_default();
    let behind: Vec<&Value> = projections
        .iter()
        .filter(|projection| parse(&projection["position"]).is_none_or(|at| at < head))
        .collect();
    if projections.is_empty() || !behind.is_empty() {
        return Err(format!("not caught up to {head} at {admin}: {body}"));
    }
    Ok(head)
}

/// Rows in one database's table and not the other's (a few of each).
fn differences(live: &Tables, fresh: &Tables) -> String {
    let mut report = String::new();
    let none = Vec::new();
    let tables: std::collections::BTreeSet<&String> = live.keys().chain(fresh.keys()).collect();
    for table in tables {
        let (kept, replayed) = (live.get(table).unwrap_or(&none), fresh.get(table).unwrap_or(&none));
        let only_kept: Vec<&Value> = kept.iter().filter(|row| !replayed.contains(row)).collect();
        let only_replayed: Vec<&Value> = replayed.iter().filter(|row| !kept.contains(row)).collect();
        if !only_kept.is_empty() || !only_replayed.is_empty() {
            report.push_str(&format!(
                "{table}: {} rows kept, {} replayed; {} only in the kept views, e.g. {:?}; {} only in the replay, e.g. {:?}\n",
                kept.len(),
                replayed.len(),
                only_kept.len(),
                &only_kept[..only_kept.len().min(3)],
                only_replayed.len(),
                &only_replayed[..only_replayed.len().min(3)],
            ));
        }
    }
    report
}

/// How `POST /orders` was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    Confirmed,
    Rejected,
    Pending,
}

/// Whether the customer cancelled a confirmed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    NotAsked,
    /// Answered 200.
    Acknowledged,
    /// Sent, but no answer said whether it happened.
    Maybe,
}

#[derive(Debug)]
struct Acknowledged {
    order_id: String,
    key: String,
    placed: Placed,
    cancel: Cancel,
}

impl std::fmt::Display for Acknowledged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "order {} (Idempotency-Key {}) acknowledged {:?}, cancel {:?},",
            self.order_id, self.key, self.placed, self.cancel
        )
    }
}

/// What the customers were told.
#[derive(Default)]
struct Book {
    orders: Vec<Acknowledged>,
    /// Orders never answered (they may or may not exist).
    unacknowledged: u32,
    /// Answers no fault explains.
    unexpected: Vec<String>,
}

impl Book {
    fn merge(&mut self, other: Book) {
        self.orders.extend(other.orders);
        self.unacknowledged += other.unacknowledged;
        self.unexpected.extend(other.unexpected);
    }

    fn count(&self, placed: Placed) -> usize {
        self.orders.iter().filter(|order| order.placed == placed).count()
    }

    /// Invariants 1 to 3 on the views' `rows`; `products` are (id, stock).
    fn check(&self, rows: &Tables, products: &[(String, i64)]) -> Result<(), String> {
        let none = Vec::new();
        let field = |row: &Value, name: &str| row[name].as_str().map(normal).unwrap_or_default();
        let statuses: HashMap<String, String> = rows
            .get("orders")
            .unwrap_or(&none)
            .iter()
            .map(|row| {
                (
                    field(row, "order_id"),
                    row["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let mut errors = Vec::new();
        for order in &self.orders {
            let allowed: &[&str] = match (order.placed, order.cancel) {
                (Placed::Confirmed, Cancel::NotAsked) => &["confirmed"],
                (Placed::Confirmed, Cancel::Acknowledged) => &["cancelled"],
                (Placed::Confirmed, Cancel::Maybe) => &["confirmed", "cancelled"],
                (Placed::Rejected, _) => &["rejected"],
                (Placed::Pending, _) => &["confirmed", "rejected"],
            };
            match statuses.get(&normal(&order.order_id)) {
                None => errors.push(format!("{order} is not in the views")),
                Some(status) if !allowed.contains(&status.as_str()) => {
                    errors.push(format!("{order} is {status} in the views"));
                }
                Some(_) => {}
            }
        }
        for (order, status) in &statuses {
            if status == "pending" {
                errors.push(format!("order {order} is still pending"));
            }
        }
        let mut held: HashMap<String, i64> = HashMap::new();
        for line in rows.get("order_lines").unwrap_or(&none) {
            if statuses
                .get(&field(line, "order_id"))
                .is_some_and(|status| status == "confirmed")
            {
                *held.entry(field(line, "product_id")).or_default() += line["quantity"].as_i64().unwrap_or_default();
            }
        }
        let available: HashMap<String, i64> = rows
            .get("products")
            .unwrap_or(&none)
            .iter()
            .map(|row| (field(row, "product_id"), row["available"].as_i64().unwrap_or(-1)))
            .collect();
        for (product, stock) in products {
            let product = normal(product);
            let expected = stock - held.get(&product).copied().unwrap_or_default();
            let found = available.get(&product).copied();
            if found != Some(expected) {
                errors.push(format!(
                    "product {product}: available {found:?}, but its stock {stock} less its confirmed lines is {expected}"
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            let total = errors.len();
            errors.truncate(12);
            Err(format!("{total} invariant violations, e.g.:\n{}", errors.join("\n")))
        }
    }
}

/// An id as the views' JSON writes it: lower-case hex without dashes.
fn normal(id: &str) -> String {
    id.replace('-', "").to_lowercase()
}

/// One customer: signs up, then orders (and sometimes cancels) until told
/// to stop, retrying each request through the faults until `give_up`.
struct Customer {
    http: reqwest::Client,
    commands: String,
    queries: String,
    name: String,
    products: Vec<String>,
    rng: Rng,
    stop: Arc<AtomicBool>,
    give_up: Instant,
}

impl Customer {
    async fn run(mut self) -> Book {
        let mut book = Book::default();
        let Some(token) = self.sign_up(&mut book).await else {
            return book;
        };
        let mut placed = 0_u32;
        while !self.stop.load(Ordering::Relaxed) {
            placed += 1;
            self.order(&token, placed, &mut book).await;
        }
        book
    }

    async fn sign_up(&self, book: &mut Book) -> Option<String> {
        let body = json!({"username": self.name, "password": PASSWORD, "displayName": self.name});
        let url = format!("{}/auth/register", self.commands);
        let (answer, ambiguous) = self.answer(|| self.http.post(&url).json(&body)).await;
        match answer {
            Some((StatusCode::CREATED, _)) => {}
            // Registered by an attempt whose answer was lost.
            Some((StatusCode::CONFLICT, _)) if ambiguous => {}
            other => {
                book.unexpected.push(format!("{} registering: {other:?}", self.name));
                return None;
            }
        }
        let token = login(&self.http, &self.commands, &self.name, PASSWORD, self.give_up).await;
        if token.is_none() {
            book.unexpected.push(format!("{} never logged in", self.name));
        }
        token
    }

    async fn order(&mut self, token: &str, number: u32, book: &mut Book) {
        let lines = self.pick_lines();
        let items: Vec<(&str, i64)> = lines.iter().map(|(id, quantity)| (id.as_str(), *quantity)).collect();
        let body = order_body(&items);
        let key = format!("{}-{number}", self.name);
        let url = format!("{}/orders", self.commands);
        let (answer, _) = self
            .answer(|| {
                self.http
                    .post(&url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
            })
            .await;
        let Some((status, answer)) = answer else {
            book.unacknowledged += 1;
            return;
        };
        let placed = match (status.as_u16(), answer["status"].as_str()) {
            (201, Some("confirmed")) => Placed::Confirmed,
            (409, Some("rejected")) => Placed::Rejected,
            (202, Some("pending")) => Placed::Pending,
            _ => {
                book.unexpected.push(format!("POST /orders {key}: {status} {answer}"));
                return;
            }
        };
        let order_id = answer["orderId"].as_str().unwrap_or_default().to_owned();
        if self.rng.percent(READ_BACK_PERCENT) {
            self.read_back(token, &order_id, placed, &answer, book).await;
        }
        let cancel = if placed == Placed::Confirmed && self.rng.percent(CANCEL_PERCENT) {
            self.cancel(token, &order_id, book).await
        } else {
            Cancel::NotAsked
        };
        book.orders.push(Acknowledged {
            order_id,
            key,
            placed,
            cancel,
        });
    }

    async fn cancel(&self, token: &str, order_id: &str, book: &mut Book) -> Cancel {
        let url = format!("{}/orders/{order_id}/cancel", self.commands);
        let body = json!({"reason": "changed my mind"});
        let (answer, ambiguous) = self
            .answer(|| self.http.post(&url).bearer_auth(token).json(&body))
            .await;
        match answer {
            None => Cancel::Maybe,
            Some((StatusCode::OK, _)) => Cancel::Acknowledged,
            // Cancelled by an attempt whose answer was lost.
            Some((StatusCode::CONFLICT, problem))
                if ambiguous && problem["detail"].as_str().is_some_and(|d| d.contains("cancelled")) =>
            {
                Cancel::Maybe
            }
            Some(other) => {
                book.unexpected.push(format!("cancel {order_id}: {other:?}"));
                Cancel::Maybe
            }
        }
    }

    /// Reads the order from the query API at the position its answer gave:
    /// if the query API answers 200, the order has the acknowledged status
    /// (a pending one may have been decided since). Down, or the views not
    /// there within the read wait (503), are what faults do.
    async fn read_back(&self, token: &str, order_id: &str, placed: Placed, answer: &Value, book: &mut Book) {
        let position = answer["position"].as_str().unwrap_or_default();
        let url = format!("{}/orders/{order_id}?minPosition={position}", self.queries);
        let allowed: &[&str] = match placed {
            Placed::Confirmed => &["confirmed"],
            Placed::Rejected => &["rejected"],
            Placed::Pending => &["pending", "confirmed", "rejected"],
        };
        match send(self.http.get(&url).bearer_auth(token)).await {
            Ok((StatusCode::OK, order)) if order["status"].as_str().is_some_and(|s| allowed.contains(&s)) => {}
            Ok((StatusCode::SERVICE_UNAVAILABLE, _)) | Err(_) => {}
            Ok((status, body)) => book
                .unexpected
                .push(format!("GET {url} after {placed:?}: {status} {body}")),
        }
    }

    /// One or two distinct products, one to three of each.
    fn pick_lines(&mut self) -> Vec<(String, i64)> {
        let count = 1 + self.rng.below(2) as usize;
        let mut lines: Vec<(String, i64)> = Vec::new();
        while lines.len() < count {
            let product = &self.products[self.rng.below(self.products.len() as u64) as usize];
            if !lines.iter().any(|(id, _)| id == product) {
                lines.push((product.clone(), 1 + self.rng.below(3) as i64));
            }
        }
        lines
    }

    /// The first answer to what `make` builds that is neither 503 nor a
    /// contention 409, sending it again until `give_up`; and whether an
    /// attempt before it went unanswered (so it may have taken effect).
    async fn answer(&self, make: impl Fn() -> RequestBuilder) -> (Option<(StatusCode, Value)>, bool) {
        let mut ambiguous = false;
        loop {
            match send(make()).await {
                Ok((status, body)) if status != StatusCode::SERVICE_UNAVAILABLE && !is_contention(status, &body) => {
                    return (Some((status, body)), ambiguous);
                }
                Ok(_) | Err(_) => ambiguous = true,
            }
            if Instant::now() >= self.give_up {
                return (None, ambiguous);
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
}

fn is_contention(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::CONFLICT && body["type"].as_str().is_some_and(|t| t.ends_with("contention"))
}

/// Sends `request` with a deadline: the status and the body (JSON, or the
/// text as a JSON string), or why there was none.
async fn send(request: RequestBuilder) -> Result<(StatusCode, Value), String> {
    let response = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// Logs in, retrying through faults until `give_up`; the access token.
async fn login(
    http: &reqwest::Client,
    commands: &str,
    username: &str,
    password: &str,
    give_up: Instant,
) -> Option<String> {
    let body = json!({"username": username, "password": password});
    loop {
        if let Ok((StatusCode::OK, answer)) = send(http.post(format!("{commands}/auth/login")).json(&body)).await {
            return answer["accessToken"].as_str().map(str::to_owned);
        }
        if Instant::now() >= give_up {
            return None;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Creates [`PRODUCTS`]; their ids with their stock.
async fn create_products(http: &reqwest::Client, commands: &str, admin: &str) -> Vec<(String, i64)> {
    let mut products = Vec::new();
    for (sku, stock) in PRODUCTS {
        let body = json!({"sku": sku, "name": format!("Product {sku}"), "price": "12.50", "stock": stock});
        let (status, answer) = send(http.post(format!("{commands}/products")).bearer_auth(admin).json(&body))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        products.push((answer["productId"].as_str().unwrap().to_owned(), stock));
    }
    products
}

/// After `after`, creates [`LATE`] through the faults; its id.
async fn create_late(
    http: reqwest::Client,
    commands: String,
    admin: String,
    after: Duration,
    give_up: Instant,
) -> Result<String, String> {
    sleep(after).await;
    let (sku, stock) = LATE;
    let body = json!({"sku": sku, "name": format!("Product {sku}"), "price": "3.20", "stock": stock});
    let mut ambiguous = false;
    loop {
        match send(
            http.post(format!("{commands}/products"))
                .bearer_auth(&admin)
                .json(&body),
        )
        .await
        {
            Ok((StatusCode::CREATED, answer)) => {
                println!("{sku} created");
                return Ok(answer["productId"].as_str().unwrap_or_default().to_owned());
            }
            // Created by an attempt whose answer was lost.
            Ok((StatusCode::CONFLICT, problem)) if ambiguous && !is_contention(StatusCode::CONFLICT, &problem) => {
                let sku = domain::product::Sku::parse(sku).unwrap();
                return Ok(domain::ids::ProductId::for_sku(&sku).to_string());
            }
            Ok((status, answer)) if status != StatusCode::SERVICE_UNAVAILABLE && status != StatusCode::CONFLICT => {
                return Err(format!("creating {sku}: {status} {answer}"));
            }
            _ => ambiguous = true,
        }
        if Instant::now() >= give_up {
            return Err(format!("{sku} was never created"));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Until `stop`: now and then asks the projectors to replay a projection.
/// How many replays they accepted (202); a process down or a replay of the
/// same projection still running (409) is expected.
async fn replay_now_and_then(
    http: reqwest::Client,
    admin_api: String,
    token: String,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> Result<u32, String> {
    let mut accepted = 0;
    while !stop.load(Ordering::Relaxed) {
        sleep(rng.millis(1_000, 3_000)).await;
        let name = ["catalog", "users", "orders"][rng.below(3) as usize];
        match send(
            http.post(format!("{admin_api}/projections/{name}/replay"))
                .bearer_auth(&token),
        )
        .await
        {
            Ok((StatusCode::ACCEPTED, _)) => accepted += 1,
            Ok((StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE, _)) | Err(_) => {}
            Ok((status, body)) => return Err(format!("replay of {name}: {status} {body}")),
        }
    }
    Ok(accepted)
}

/// SplitMix64: a small seeded generator, so a seed replays the same kills
/// and the same customers' choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}
