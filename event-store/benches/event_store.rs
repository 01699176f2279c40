//! Event store benchmarks: `cargo bench -p event-store --bench event_store`.
//!
//! 1. Appends: 16 concurrent tasks append single-event commands to the
//!    embedded store, which commits the appends waiting together. Two raw
//!    SQLite loops with the same table and durability (WAL,
//!    synchronous=FULL) are the baselines of the same run: one insert per
//!    commit (what the store's group commit saves), and 16 inserts per
//!    commit (the same batching done by hand, so the ratio to it is the
//!    store's own overhead: channel, expected revision and idempotency
//!    checks, savepoints, wake-ups).
//! 2. Catch-up: a subscription reads a log of 1,000,000 events from the
//!    start; in the same run, a raw `SELECT` over the same rows is the
//!    baseline.
//!
//! Sizes can be changed with `BENCH_APPENDS` and `BENCH_EVENTS`. The report
//! is Markdown, ready for BENCHMARKS.md.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::sqlite::{SqliteEventStore, WriterStats};
use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, StreamFilter, StreamName};
use uuid::Uuid;

const TASKS: usize = 16;

fn main() {
    let appends = env_number("BENCH_APPENDS", 20_000);
    let events = env_number("BENCH_EVENTS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let folder = tempfile::tempdir().unwrap();

    println!("## Event store (embedded SQLite)\n");
    println!("{}\n", test_support::bench::machine());
    println!("| measurement | events | seconds | events/s | ratio to baseline |");
    println!("| --- | ---: | ---: | ---: | ---: |");

    let one_per_commit = appends / 4;
    let unbatched = raw_insert_loop(&folder.path().join("raw-1.db"), one_per_commit, 1);
    report(
        "raw SQLite, 1 insert per commit (baseline A)",
        one_per_commit,
        unbatched,
        "1.00x",
    );
    let batched_count = appends / TASKS * TASKS;
    let batched = raw_insert_loop(&folder.path().join("raw-16.db"), batched_count, TASKS);
    report(
        "raw SQLite, 16 inserts per commit (baseline B)",
        batched_count,
        batched,
        "1.00x",
    );
    let (appended, store, stats) = runtime.block_on(concurrent_appends(&folder.path().join("appends.db"), appends));
    let store_rate = rate(appended, store);
    report(
        &format!(
            "store append, 16 concurrent tasks, 1 event each ({:.1} appends per commit)",
            stats.taken_appends as f64 / stats.commits as f64
        ),
        appended,
        store,
        &format!(
            "**{:.2}x** of B, {:.2}x of A",
            store_rate / rate(batched_count, batched),
            store_rate / rate(one_per_commit, unbatched)
        ),
    );

    let path = folder.path().join("catch-up.db");
    runtime.block_on(fill(&path, events));
    let raw_scan = raw_select_scan(&path, events);
    report("raw SQLite SELECT over the log (baseline)", events, raw_scan, "1.00x");
    let catch_up = runtime.block_on(catch_up(&path, events));
    report(
        "store catch-up subscription from the start",
        events,
        catch_up,
        &format!("{:.2}x", rate(events, catch_up) / rate(events, raw_scan)),
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn report(name: &str, count: usize, elapsed: Duration, ratio: &str) {
    println!(
        "| {name} | {count} | {:.2} | {:.0} | {ratio} |",
        elapsed.as_secs_f64(),
        rate(count, elapsed)
    );
}

/// A payload the size of a typical order event.
fn data(n: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "orderId": Uuid::new_v4(),
        "customerId": Uuid::new_v4(),
        "lines": [{ "productId": Uuid::new_v4(), "quantity": n % 10 + 1 }],
        "at": "2026-11-26T00:00:00Z",
    }))
    .unwrap()
}

fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::new_v4(),
        trace_id: None,
        causation_id: None,
        user_id: Some(Uuid::new_v4()),
        schema_version: 1,
    }
}

fn new_event(n: usize) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: "OrderPlaced".to_owned(),
        data: data(n),
        metadata: metadata(),
    }
}

/// Each task owns a stream and appends one event at a time at the revision
/// it expects, as a command handler would. Returns the events appended, the
/// time, and the writer's counters (for the mean group size).
async fn concurrent_appends(path: &std::path::Path, total: usize) -> (usize, Duration, WriterStats) {
    let store = Arc::new(SqliteEventStore::open(path).unwrap());
    let per_task = total / TASKS;
    let started = Instant::now();
    let tasks = (0..TASKS).map(|task| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let stream = StreamName::new(format!("bench-{task}")).unwrap();
            for n in 0..per_task {
                let expected = ExpectedRevision::after(n.checked_sub(1).map(|r| r as u64));
                store.append(&stream, expected, vec![new_event(n)]).await.unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.writer_stats();
    assert_eq!(stats.taken_appends as usize, per_task * TASKS);
    let appended = store
        .read_all(None, total + 1, &StreamFilter::all())
        .await
        .unwrap()
        .len();
    assert_eq!(appended, per_task * TASKS);
    (appended, elapsed, stats)
}

/// The same table and durability as the store, on one connection:
/// `per_commit` inserts (one per stream, over 16 streams) per transaction.
fn raw_insert_loop(path: &std::path::Path, count: usize, per_commit: usize) -> Duration {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.pragma_update(None, "journal_mode", "WAL").unwrap();
    connection.pragma_update(None, "synchronous", "FULL").unwrap();
    connection
        .execute_batch(
            "CREATE TABLE events (
                position INTEGER PRIMARY KEY, event_id BLOB NOT NULL UNIQUE, stream TEXT NOT NULL,
                revision INTEGER NOT NULL, event_type TEXT NOT NULL, data BLOB NOT NULL,
                metadata BLOB NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream, revision))",
        )
        .unwrap();
    let metadata = serde_json::to_vec(&metadata()).unwrap();
    let started = Instant::now();
    for first in (0..count).step_by(per_commit) {
        connection.execute_batch("BEGIN").unwrap();
        for n in first..(first + per_commit).min(count) {
            connection
                .prepare_cached(
                    "INSERT INTO events (event_id, stream, revision, event_type, data, metadata, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .unwrap()
                .execute((
                    Uuid::new_v4().as_bytes().as_slice(),
                    format!("bench-{}", n % TASKS),
                    (n / TASKS) as i64,
                    "OrderPlaced",
                    data(n),
                    &metadata,
                    0i64,
                ))
                .unwrap();
        }
        connection.execute_batch("COMMIT").unwrap();
    }
    let elapsed = started.elapsed();
    let stored: i64 = connection
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored as usize, count);
    elapsed
}

/// Fills the log with `count` events, 1000 per append over many streams.
async fn fill(path: &std::path::Path, count: usize) {
    let store = SqliteEventStore::open(path).unwrap();
    for batch in 0..count.div_ceil(1000) {
        let stream = StreamName::new(format!("order-{batch}")).unwrap();
        let size = (count - batch * 1000).min(1000);
        let events = (0..size).map(new_event).collect();
        store.append(&stream, ExpectedRevision::NoStream, events).await.unwrap();
    }
}

async fn catch_up(path: &std::path::Path, count: usize) -> Duration {
    let store = SqliteEventStore::open(path).unwrap();
    let started = Instant::now();
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    for _ in 0..count {
        subscription.next().await.unwrap().unwrap();
    }
    started.elapsed()
}

/// position, event id, stream, revision, type, data, metadata, recorded at.
type RawRow = (i64, Vec<u8>, String, i64, String, Vec<u8>, Vec<u8>, i64);

/// Every column of every row, read and copied out, without decoding.
fn raw_select_scan(path: &std::path::Path, count: usize) -> Duration {
    let connection = rusqlite::Connection::open(path).unwrap();
    let started = Instant::now();
    let mut statement = connection
        .prepare("SELECT position, event_id, stream, revision, event_type, data, metadata, recorded_at FROM events ORDER BY position")
        .unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut seen = 0;
    while let Some(row) = rows.next().unwrap() {
        let _: RawRow = (
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
            row.get(4).unwrap(),
            row.get(5).unwrap(),
            row.get(6).unwrap(),
            row.get(7).unwrap(),
        );
        seen += 1;
    }
    assert_eq!(seen, count);
    started.elapsed()
}
