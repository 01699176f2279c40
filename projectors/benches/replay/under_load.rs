//! The query API while a rebuild runs beside it: issue #13 asks that the
//! query API benchmark's p99 stays within 2x of its idle value during a
//! blue/green rebuild.
//!
//! The views are vacuumed, analysed and checkpointed first, so that what
//! the replays left for Postgres to do falls in no window. The query API
//! serves the replayed views from this process, on a runtime
//! of its own (as its own process would, apart from the load's tasks). Its
//! capacity is measured first as the query API benchmark measures it:
//! `GET /products/{id}` round the products from [`CONNECTIONS`] clients,
//! each sending its next request when the last is answered. Then requests
//! are sent at a fixed rate, half that capacity, whatever the answers do
//! (an open loop: a slow answer delays no later request), each timed from
//! the moment it was due, so time spent queued behind the rebuild counts:
//! for [`IDLE`] with nothing else running, then for as long as
//! `projectors rebuild all` runs as a child process, with the transactions
//! on the views database sampled meanwhile.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use api_common::config::Env;
use api_common::serve::Server;
use api_common::verifier::PublicKey;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use test_support::postgres::Scratch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::command::{self, Phases, Reported};
use crate::transactions::{Longest, Sampler};

/// Clients of the capacity measurement, as the query API benchmark's wrk.
const CONNECTIONS: usize = 32;
/// How long the capacity is measured, after as long again to warm up.
const CAPACITY: Duration = Duration::from_secs(5);
/// The open loop's warm-up (not counted), then its idle window.
const WARM_UP: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(10);
/// How long a request may take before it counts as an error.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the requests due in one window met.
#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub non_200: usize,
    pub errors: usize,
}

impl Tally {
    /// The latency below which a fraction `p` of the answers came, in ms.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    fn requests(&self) -> usize {
        self.latencies.len() + self.non_200 + self.errors
    }
}

/// The windows of the open loop, in order.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Window {
    WarmUp,
    Idle,
    Rebuild,
    After,
}

/// What the rebuild under load measured.
pub struct UnderLoad {
    pub products: usize,
    /// Requests per second: sustained by [`CONNECTIONS`] clients, and
    /// offered by the open loop.
    pub capacity: f64,
    pub rate: f64,
    pub idle: Tally,
    pub rebuild: Tally,
    pub reported: Reported,
    pub phases: BTreeMap<String, Phases>,
    pub longest: Longest,
}

/// Runs the query API on the views in `database` (`db` connected to it),
/// measures its capacity, then loads it idle and during `projectors
/// rebuild all` on the log in `store`.
pub async fn measure(server: &str, database: &Scratch, db: &DatabaseConnection, store: &Path) -> UnderLoad {
    settle(db).await;
    let api = Api::start(&database.url).await;
    let urls = Arc::new(product_urls(db, api.server.address).await);
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    closed_loop(&client, &urls, CAPACITY).await;
    let capacity = closed_loop(&client, &urls, CAPACITY).await;
    let window = Arc::new(AtomicU8::new(Window::WarmUp as u8));
    let stop = CancellationToken::new();
    let rate = capacity / 2.0;
    let load = tokio::spawn(open_loop(
        client,
        Arc::clone(&urls),
        rate,
        Arc::clone(&window),
        stop.clone(),
    ));
    let (reported, longest) = windows(server, database, store, &window).await;
    stop.cancel();
    let [idle, rebuild] = load.await.unwrap();
    api.stop().await;
    UnderLoad {
        products: urls.len(),
        capacity,
        rate,
        idle,
        rebuild,
        reported,
        phases: command::phases(db).await,
        longest,
    }
}

/// Leaves nothing of the replays for Postgres to do in the idle window:
/// their new tables vacuumed and analysed (else autovacuum comes to them
/// at some moment of the load), their writes flushed by a checkpoint.
async fn settle(db: &DatabaseConnection) {
    for sql in ["VACUUM ANALYZE", "CHECKPOINT"] {
        // CHECKPOINT needs a superuser (or pg_checkpoint): without, the
        // windows may hold one, as they did before.
        if let Err(error) = db.execute_unprepared(sql).await {
            eprintln!("{sql} before the query API windows failed: {error}");
        }
    }
}

/// Takes the open loop through its windows: the warm-up, the idle one, and
/// `projectors rebuild all` on the log in `store` with the transactions on
/// `database` sampled meanwhile; what the command reported, and the
/// longest transaction.
async fn windows(server: &str, database: &Scratch, store: &Path, window: &AtomicU8) -> (Reported, Longest) {
    tokio::time::sleep(WARM_UP).await;
    window.store(Window::Idle as u8, Ordering::Relaxed);
    tokio::time::sleep(IDLE).await;
    window.store(Window::Rebuild as u8, Ordering::Relaxed);
    let sampler = Sampler::start(server, &database.name).await;
    let (store, url) = (store.to_owned(), database.url.clone());
    let reported = tokio::task::spawn_blocking(move || command::run("rebuild", &store, &url))
        .await
        .unwrap();
    window.store(Window::After as u8, Ordering::Relaxed);
    (reported, sampler.stop().await)
}

/// The query API, on a runtime of its own.
struct Api {
    runtime: tokio::runtime::Runtime,
    server: Server,
    shutdown: CancellationToken,
}

impl Api {
    /// Serves the views at `views_url` on a free port.
    async fn start(views_url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("query-api")
            .enable_all()
            .build()
            .unwrap();
        let pem = command_api::auth::tokens::SigningKey::generate()
            .unwrap()
            .public_key_pem();
        let env = Env::from_pairs([("VIEWS_DATABASE_URL", views_url), ("QUERY_API_ADDR", "127.0.0.1:0")]);
        let config = query_api::config::Config::from_env(&env, PublicKey::InProcess(&pem)).unwrap();
        let shutdown = CancellationToken::new();
        let stopping = shutdown.clone();
        let server = runtime
            .spawn(async move {
                let db = views::connect(&config.views_url, config.pool).await.unwrap();
                query_api::startup::start(db, config, stopping).await.unwrap()
            })
            .await
            .unwrap();
        Self {
            runtime,
            server,
            shutdown,
        }
    }

    /// Stops serving, once the requests in flight are answered.
    async fn stop(self) {
        self.shutdown.cancel();
        self.server.stopped().await.unwrap();
        self.runtime.shutdown_background();
    }
}

/// `GET /products/{id}` of every product, in key order.
async fn product_urls(db: &DatabaseConnection, address: std::net::SocketAddr) -> Vec<String> {
    let sql = "SELECT product_id::text AS id FROM products ORDER BY product_id";
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| format!("http://{address}/products/{}", row.try_get::<String>("", "id").unwrap()))
        .collect()
}

/// `GET url`, the answer read whole (so its connection is kept alive for
/// the next); its status, or why there was none.
async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status();
    response.bytes().await?;
    Ok(status)
}

/// The requests per second [`CONNECTIONS`] clients had answered with 200
/// over `span`, each sending its next request when the last was answered.
async fn closed_loop(client: &reqwest::Client, urls: &Arc<Vec<String>>, span: Duration) -> f64 {
    let deadline = Instant::now() + span;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|n| {
            let (client, urls) = (client.clone(), Arc::clone(urls));
            tokio::spawn(async move {
                let mut answered = 0;
                while Instant::now() < deadline {
                    let status = get(&client, &urls[(n * 31 + answered) % urls.len()]).await.unwrap();
                    assert_eq!(status, reqwest::StatusCode::OK, "the query API did not answer 200");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let mut answered = 0;
    for client in clients {
        answered += client.await.unwrap();
    }
    answered as f64 / span.as_secs_f64()
}

/// Sends a request every `1 / rate` s, round `urls`, until `stop`; what
/// the requests due in the idle window and in the rebuild's met.
async fn open_loop(
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    rate: f64,
    window: Arc<AtomicU8>,
    stop: CancellationToken,
) -> [Tally; 2] {
    let (answers, mut received) = tokio::sync::mpsc::unbounded_channel();
    let tally = tokio::spawn(async move {
        let mut tallies = [Tally::default(), Tally::default()];
        while let Some((window, answer)) = received.recv().await {
            count(&mut tallies, window, answer);
        }
        tallies
    });
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0;
    while let Some(due) = stop.run_until_cancelled(ticks.tick()).await {
        let (client, url, answers) = (client.clone(), urls[sent % urls.len()].clone(), answers.clone());
        let window = window.load(Ordering::Relaxed);
        sent += 1;
        tokio::spawn(async move {
            let answer = get(&client, &url).await.map(|status| (status, due.elapsed()));
            answers.send((window, answer)).unwrap();
        });
    }
    drop(answers);
    tally.await.unwrap()
}

/// Counts an answer to a request due in `window` (only the idle and
/// rebuild windows are kept).
fn count(tallies: &mut [Tally; 2], window: u8, answer: Result<(reqwest::StatusCode, Duration), reqwest::Error>) {
    let tally = match window {
        w if w == Window::Idle as u8 => &mut tallies[0],
        w if w == Window::Rebuild as u8 => &mut tallies[1],
        _ => return,
    };
    match answer {
        Ok((reqwest::StatusCode::OK, latency)) => tally.latencies.push(latency),
        Ok(_) => tally.non_200 += 1,
        Err(_) => tally.errors += 1,
    }
}

/// The load's table: each window's latencies and failures, and the
/// ratios of the rebuild's to the idle ones.
pub fn report(load: &UnderLoad) {
    println!(
        "\nThe query API under `projectors rebuild all` on the replayed views: `GET /products/{{id}}` round the \
         {} products over keep-alive connections. {CONNECTIONS} clients each waiting for its answer got {:.0} \
         answers/s ({} s, after as long to warm up); then requests went out at a fixed {:.0}/s (half that) \
         whatever the answers did, each timed from when it was due: {} s idle, then while the rebuild ran \
         ({:.1} s; {} rows differed from live, so it was promoted).\n",
        load.products,
        load.capacity,
        CAPACITY.as_secs(),
        load.rate,
        IDLE.as_secs(),
        load.reported.total.as_secs_f64(),
        load.reported.differences.values().sum::<u64>(),
    );
    println!("| window | requests | p50 ms | p99 ms | max ms | non-200 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, tally) in [("idle", &load.idle), ("during `projectors rebuild all`", &load.rebuild)] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
            tally.requests(),
            tally.percentile_ms(0.5),
            tally.percentile_ms(0.99),
            tally.percentile_ms(1.0),
            tally.non_200,
            tally.errors
        );
    }
    let ratio = |p| load.rebuild.percentile_ms(p) / load.idle.percentile_ms(p);
    println!(
        "| **during / idle** | | {:.2}x | **{:.2}x** | {:.2}x | | |",
        ratio(0.5),
        ratio(0.99),
        ratio(1.0)
    );
}
