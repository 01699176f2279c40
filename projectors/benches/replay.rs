//! Projector replay into Postgres views:
//! `cargo bench -p projectors --bench replay`.
//!
//! Builds a log of `BENCH_EVENTS` events (default 1,000,000: orders placed,
//! confirmed and cancelled, and the stock reservations they made), then
//! times a replay of every projection into a fresh Postgres database against
//! a baseline in the same run: the same rows written with batched
//! `INSERT ... ON CONFLICT` statements of 500 rows and a checkpoint update
//! per batch. Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres` (a database is created per
//! run).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId, UserId};
use domain::money::Price;
use domain::order::{Customer, OrderEvent, OrderLines, PricedLine, ShippingAddress};
use domain::product::{ProductEvent, ProductName, Sku};
use domain::quantity::{Quantity, StockLevel};
use domain::text::Reason;
use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, StreamName};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use tokio_util::sync::CancellationToken;

const PRODUCTS: usize = 1000;

fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(events, &server));
}

fn encode<E: DomainEvent>(event: &E) -> NewEvent {
    let encoded = event.encode().unwrap();
    NewEvent {
        id: uuid::Uuid::now_v7(),
        event_type: encoded.event_type,
        data: encoded.data,
        metadata: EventMetadata {
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: None,
            user_id: None,
            schema_version: encoded.schema_version,
        },
    }
}

/// A log of about `target` events: products, then orders of 2 lines that
/// are placed, confirmed and cancelled (one append of 3 events each), and
/// the reservations they made on the products.
async fn build_log(store: Arc<dyn EventStore>, target: usize) -> usize {
    let now = chrono::Utc::now();
    let skus: Vec<Sku> = (0..PRODUCTS).map(|n| Sku::parse(&format!("P-{n}")).unwrap()).collect();
    let orders = (target - PRODUCTS) / 4;
    let mut written = 0;
    let mut reservations: Vec<Vec<NewEvent>> = (0..PRODUCTS).map(|_| Vec::new()).collect();
    for (n, sku) in skus.iter().enumerate() {
        let created = ProductEvent::Created {
            product_id: ProductId::for_sku(sku),
            sku: sku.clone(),
            name: ProductName::parse(&format!("Product {n}")).unwrap(),
            price: Price::from_minor_units(1_000 + n as u64).unwrap(),
            available: StockLevel::parse_field("s", 1_000_000_000).unwrap(),
            at: now,
        };
        reservations[n].push(encode(&created));
    }
    let customer = Customer::parse(Some("Bench"), None, "0812345678").unwrap();
    let shipping = ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "TH", "10110").unwrap();
    let order_batches: Vec<(StreamName, Vec<NewEvent>)> = (0..orders)
        .map(|n| {
            let order_id = OrderId::from_uuid(uuid::Uuid::now_v7());
            let customer_id = UserId::from_uuid(uuid::Uuid::from_u128((n % 5000) as u128));
            let picks = [n % PRODUCTS, (n * 7 + 1) % PRODUCTS];
            let lines = OrderLines::parse(&[
                (ProductId::for_sku(&skus[picks[0]]), 1),
                (ProductId::for_sku(&skus[picks[1]]), 2),
            ])
            .unwrap();
            let priced: Vec<PricedLine> = lines
                .as_slice()
                .iter()
                .map(|line| PricedLine {
                    product_id: line.product_id,
                    sku: Sku::parse("P-0").unwrap(),
                    name: ProductName::parse("Product").unwrap(),
                    quantity: line.quantity,
                    unit_price: Price::from_minor_units(1_000).unwrap(),
                    line_total: Price::from_minor_units(1_000).unwrap().money(),
                })
                .collect();
            for (k, line) in lines.as_slice().iter().enumerate() {
                let reserved = ProductEvent::StockReserved {
                    product_id: line.product_id,
                    order_id,
                    quantity: Quantity::parse_field("q", i64::from(line.quantity.get())).unwrap(),
                    unit_price: Price::from_minor_units(1_000).unwrap(),
                    sku: skus[picks[k]].clone(),
                    name: ProductName::parse("Product").unwrap(),
                    available: StockLevel::parse_field("s", 999_999_000).unwrap(),
                    at: now,
                };
                if k == 0 {
                    reservations[picks[0]].push(encode(&reserved));
                }
            }
            let events = vec![
                encode(&OrderEvent::Placed {
                    order_id,
                    customer_id,
                    lines: lines.clone(),
                    customer: customer.clone(),
                    shipping: shipping.clone(),
                    at: now,
                }),
                encode(&OrderEvent::Confirmed {
                    order_id,
                    customer_id,
                    lines: priced,
                    total: Price::from_minor_units(3_000).unwrap().money(),
                    at: now,
                }),
                encode(&OrderEvent::Cancelled {
                    order_id,
                    customer_id,
                    lines,
                    reason: Reason::parse("bench").unwrap(),
                    at: now,
                }),
            ];
            (StreamName::new(format!("order-{order_id}")).unwrap(), events)
        })
        .collect();
    for (n, events) in reservations.into_iter().enumerate() {
        let stream = StreamName::new(format!("product-{}", ProductId::for_sku(&skus[n]))).unwrap();
        for chunk in events.chunks(1000) {
            written += chunk.len();
            store
                .append(&stream, ExpectedRevision::Any, chunk.to_vec())
                .await
                .unwrap();
        }
    }
    let tasks: Vec<_> = order_batches
        .chunks(order_batches.len().div_ceil(16).max(1))
        .map(|chunk| {
            let store = Arc::clone(&store);
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for (stream, events) in chunk {
                    store.append(&stream, ExpectedRevision::NoStream, events).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    written + orders * 3
}

async fn fresh_database(server: &str) -> (DatabaseConnection, String) {
    let admin = Database::connect(server).await.unwrap();
    let name = format!("shop_bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    (projectors::database::connect(url.as_str(), 8).await.unwrap(), name)
}

async fn replay(store: Arc<dyn EventStore>, db: &DatabaseConnection) -> Duration {
    let head = store.head().await.unwrap().unwrap();
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(store, db.clone(), Default::default(), shutdown.clone());
    for mut progress in running.progress.values().cloned() {
        progress.wait_for(|p| p.is_some_and(|p| p >= head)).await.unwrap();
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.stopped().await;
    elapsed
}

/// The same rows, written as batched upserts of 500 with a checkpoint per batch.
async fn baseline(store: Arc<dyn EventStore>, db: &DatabaseConnection) -> Duration {
    let started = Instant::now();
    let mut after = None;
    loop {
        let batch = store
            .read_all(after, 500, &event_store::StreamFilter::all())
            .await
            .unwrap();
        let Some(last) = batch.last() else { break };
        after = Some(last.position);
        let mut orders = Vec::new();
        let mut products = Vec::new();
        for event in &batch {
            if event.stream.starts_with("order-") && event.event_type == "OrderPlaced" {
                let data: serde_json::Value = serde_json::from_slice(&event.data).unwrap();
                orders.push(format!(
                    "('{}', '{}', 'pending', 'pending', '0812345678', 'a', 'b', 'c', 'd', 'e', now(), now())",
                    data["orderId"].as_str().unwrap(),
                    data["customerId"].as_str().unwrap()
                ));
            } else if event.stream.starts_with("product-") {
                let data: serde_json::Value = serde_json::from_slice(&event.data).unwrap();
                products.push(format!(
                    "('{}', '{}', 'n', 1000, {}, now(), now())",
                    data["productId"].as_str().unwrap(),
                    event.position.commit,
                    data["available"].as_u64().unwrap_or(0)
                ));
            }
        }
        let transaction = db.begin().await.unwrap();
        if !orders.is_empty() {
            transaction
                .execute_unprepared(&format!(
                    "INSERT INTO orders (order_id, customer_id, status, payment_status, customer_phone, address, city, state, country, postal_code, placed_at, updated_at) VALUES {} ON CONFLICT (order_id) DO UPDATE SET status = 'confirmed', updated_at = now()",
                    orders.join(",")
                ))
                .await
                .unwrap();
        }
        if !products.is_empty() {
            products.sort();
            products.dedup_by(|a, b| a[..38] == b[..38]);
            transaction
                .execute_unprepared(&format!(
                    "INSERT INTO products (product_id, sku, name, price_minor, available, created_at, updated_at) VALUES {} ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, updated_at = now()",
                    products.join(",")
                ))
                .await
                .unwrap();
        }
        transaction
            .execute_unprepared(&format!(
                "INSERT INTO checkpoints (projection, commit_position, prepare_position, updated_at) VALUES ('baseline', {0}, {0}, now()) ON CONFLICT (projection) DO UPDATE SET commit_position = excluded.commit_position, prepare_position = excluded.prepare_position",
                last.position.commit
            ))
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    }
    started.elapsed()
}

async fn run(target: usize, server: &str) {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let started = Instant::now();
    let events = build_log(Arc::clone(&store), target).await;
    eprintln!("built a log of {events} events in {:?}", started.elapsed());
    let (baseline_db, _) = fresh_database(server).await;
    let baseline_time = baseline(Arc::clone(&store), &baseline_db).await;
    let (db, _) = fresh_database(server).await;
    let replay_time = replay(Arc::clone(&store), &db).await;
    let rate = |elapsed: Duration| events as f64 / elapsed.as_secs_f64();
    println!("## Projector replay into Postgres\n");
    println!("| measurement | events | seconds | events/s | ratio to baseline |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| batched INSERT ... ON CONFLICT + checkpoint, 500 per batch (baseline) | {events} | {:.1} | {:.0} | 1.00x |",
        baseline_time.as_secs_f64(),
        rate(baseline_time)
    );
    println!(
        "| replay of catalog, users and orders (concurrently) | {events} | {:.1} | {:.0} | {:.2}x |",
        replay_time.as_secs_f64(),
        rate(replay_time),
        rate(replay_time) / rate(baseline_time)
    );
}
