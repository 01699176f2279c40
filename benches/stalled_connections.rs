//! Slowloris against `shop`: `cargo bench -p shop --bench stalled_connections`.
//!
//! Starts the release `shop` binary as `cargo run --release` would (its
//! defaults, data in a temporary folder, free ports), opens `BENCH_STALLED`
//! sockets (default 3,000) to the query API that each send half a request
//! line and stall, then measures while they are open:
//!
//! - the latency of `GET /products`, each on a new connection (p50, p99),
//!   before and during the stall;
//! - how long until the server has closed every stalled socket (it should
//!   be about `HTTP_HEADER_TIMEOUT_MS`, default 5 s);
//! - the growth of the server's resident memory (`VmRSS`), at its peak.
//!
//! The server inherits this process's descriptor limit, raised to the hard
//! limit first (with `prlimit`) when the soft one is too low.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use test_support::binary::free_address;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let stalled: usize = std::env::var("BENCH_STALLED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    println!("## {stalled} stalled sockets against the query API\n");
    println!("{}\n", test_support::bench::machine());
    raise_descriptor_limit(stalled * 2 + 1000);
    let folder = tempfile::tempdir().unwrap();
    let queries = free_address();
    let server = start_shop(&folder, queries);
    let pid = server.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(pid, queries, stalled));
}

async fn run(pid: u32, queries: SocketAddr, stalled: usize) {
    wait_until_answering(queries).await;
    let before = latencies(queries, Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid);
    println!(
        "- before: GET /products p50 {:.2} ms, p99 {:.2} ms ({} requests); server RSS {} MiB",
        percentile(&before, 0.5),
        percentile(&before, 0.99),
        before.len(),
        rss_before / 1024
    );

    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = tokio::spawn(sample_rss(pid, Arc::clone(&peak)));
    let opened = Instant::now();
    let mut closings = Vec::with_capacity(stalled);
    for _ in 0..stalled {
        let mut socket = TcpStream::connect(queries).await.unwrap();
        socket.write_all(b"GET /products HT").await.unwrap();
        closings.push(tokio::spawn(async move {
            let sent = Instant::now();
            let mut buffer = [0_u8; 512];
            while let Ok(1..) = socket.read(&mut buffer).await {}
            sent.elapsed()
        }));
    }
    println!(
        "- {stalled} stalled sockets open in {:.2} s",
        opened.elapsed().as_secs_f64()
    );
    let during = latencies(queries, Duration::from_secs(3)).await;
    let mut closed_after = Vec::with_capacity(stalled);
    for closing in closings {
        closed_after.push(closing.await.unwrap());
    }
    let all_closed = opened.elapsed();
    sampler.abort();
    let first = closed_after.iter().min().unwrap();
    let last = closed_after.iter().max().unwrap();
    println!(
        "- during: GET /products p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.len()
    );
    println!(
        "- stalled sockets closed by the server {:.2}-{:.2} s after their half line; all {:.2} s after the first was opened",
        first.as_secs_f64(),
        last.as_secs_f64(),
        all_closed.as_secs_f64()
    );
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "- server RSS {} MiB before, {} MiB at peak: +{:.1} MiB; {} MiB after",
        rss_before / 1024,
        peak / 1024,
        (peak - rss_before) as f64 / 1024.0,
        rss_kib(pid) / 1024
    );
}

/// `shop --release` with its defaults, its data in `folder`, the query API
/// on `queries` and the other APIs on free ports.
fn start_shop(folder: &tempfile::TempDir, queries: SocketAddr) -> Killed {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let child = Command::new(env!("CARGO_BIN_EXE_shop"))
        .env("EVENT_STORE_URL", store_url)
        .env("VIEWS_DATABASE_URL", views_url)
        .env("COMMAND_API_ADDR", free_address().to_string())
        .env("QUERY_API_ADDR", queries.to_string())
        .env("PROJECTORS_ADMIN_ADDR", free_address().to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

/// Until `GET /products` answers 200 with the sample products.
async fn wait_until_answering(queries: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get_products(queries)
        .await
        .is_some_and(|answer| answer.contains("\"sku\""))
    {
        assert!(Instant::now() < deadline, "the query API did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `GET /products` on a new connection: the answer, if 200.
async fn get_products(queries: SocketAddr) -> Option<String> {
    let mut client = TcpStream::connect(queries).await.ok()?;
    let request = b"GET /products HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n";
    client.write_all(request).await.ok()?;
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.ok()?;
    answer.starts_with("HTTP/1.1 200").then_some(answer)
}

/// Latencies in milliseconds of `GET /products`, one after another (each
/// must answer 200 within 5 s), for `period`.
async fn latencies(queries: SocketAddr, period: Duration) -> Vec<f64> {
    let started = Instant::now();
    let mut taken = Vec::new();
    while started.elapsed() < period {
        let sent = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), get_products(queries)).await;
        assert!(matches!(answer, Ok(Some(_))), "GET /products failed or took over 5 s");
        taken.push(sent.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    taken
}

fn percentile(values: &[f64], share: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn sample_rss(pid: u32, peak: Arc<AtomicU64>) {
    loop {
        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit when it is
/// below `wanted` (the server started afterwards inherits it).
fn raise_descriptor_limit(wanted: usize) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    let soft: usize = numbers[0].parse().unwrap_or(usize::MAX);
    if soft >= wanted {
        return;
    }
    let hard = numbers[1];
    let pid = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .unwrap();
    assert!(
        raised.success(),
        "prlimit could not raise the descriptor limit to {hard}"
    );
    assert!(
        hard.parse::<usize>().unwrap_or(usize::MAX) >= wanted,
        "{wanted} descriptors needed; the hard limit is {hard}"
    );
}
