//! Loading a hot product (#11): `cargo bench -p command-api --bench product_load`.
//!
//! One product on a fresh embedded store with `PRODUCT_ORDERS` past orders
//! (default 1,000,000): a quarter refused, the rest reserved and released
//! (cancelled or rejected), except the last 999, which hold the product's
//! 999 units (confirmed). The events are appended straight through the store in
//! batches of `BATCH` events (going through the saga would take hours here),
//! encoded exactly as the aggregate encodes them. Then it measures:
//!
//! 1. the first load by a fresh `Aggregates<Product>` (a process that
//!    starts on a log written before snapshots existed);
//! 2. a load by another fresh `Aggregates<Product>` after that (a restart);
//! 3. reserve-then-release commands on the hot product with its fold cached
//!    (after a restock: the history ends with every unit held).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use command_api::aggregates::{Aggregates, Causation};
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId};
use domain::money::Price;
use domain::product::{Product, ProductCommand, ProductEvent, ProductName, Sku};
use domain::quantity::{Quantity, RestockQuantity, StockLevel};
use event_store::{EventStore, ExpectedRevision, NewEvent, StreamName};
use uuid::Uuid;

/// Events per append: about 600 KB, under the store's 1 MiB append limit.
const BATCH: usize = 1_500;
/// Past orders that still hold their unit at the end.
const STILL_HELD: u64 = 999;
/// Loads measured after the first one, each by a fresh `Aggregates`.
const RESTARTS: usize = 5;
/// Commands measured on the cached product.
const COMMANDS: usize = 20;

fn main() {
    let orders: u64 = std::env::var("PRODUCT_ORDERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(orders));
}

async fn run(orders: u64) {
    let machine = test_support::bench::machine();
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let sku = Sku::parse("HOT-1").unwrap();
    let product_id = ProductId::for_sku(&sku);
    let started = Instant::now();
    let events = write_history(store.as_ref(), product_id, &sku, orders).await;
    let setup = started.elapsed();

    let first = timed_load(&store, product_id).await;
    let mut restarts = Vec::new();
    for _ in 0..RESTARTS {
        restarts.push(timed_load(&store, product_id).await);
    }
    restarts.sort();
    let products = Aggregates::<Product>::new(Arc::clone(&store));
    restock(&products, product_id).await;
    let mut commands = Vec::new();
    for n in 0..COMMANDS {
        let order_id = OrderId::from_uuid(Uuid::now_v7());
        let started = Instant::now();
        reserve_and_release(&products, product_id, order_id).await;
        commands.push(started.elapsed() / 2);
        if n == 0 {
            commands.clear(); // the first one may still be catching up
        }
    }
    commands.sort();

    println!("## Product load with {orders} past orders (#11)\n");
    println!("{machine}\n");
    println!(
        "{events} events in the product's stream, appended in {:.1} s.\n",
        setup.as_secs_f64()
    );
    println!("| measurement | time |");
    println!("| --- | ---: |");
    println!("| first load, fresh process | {} |", ms(first));
    println!(
        "| load after a restart, median of {RESTARTS} | {} |",
        ms(restarts[RESTARTS / 2])
    );
    println!(
        "| one command on the cached product, median of {} | {} |",
        commands.len(),
        ms(commands[commands.len() / 2])
    );
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

async fn timed_load(store: &Arc<dyn EventStore>, product_id: ProductId) -> Duration {
    let products = Aggregates::<Product>::new(Arc::clone(store));
    let started = Instant::now();
    let loaded = products.load(product_id).await.unwrap();
    let elapsed = started.elapsed();
    assert!(matches!(loaded.state, domain::product::ProductState::Active(_)));
    elapsed
}

/// Every unit is held at the end of the history: the commands need some.
async fn restock(products: &Aggregates<Product>, product_id: ProductId) {
    let quantity = RestockQuantity::parse_field("quantity", 1_000).unwrap();
    let now = chrono::Utc::now();
    let causation = Causation::request(Uuid::now_v7(), None);
    products
        .execute(product_id, causation, || ProductCommand::Restock { quantity, now })
        .await
        .unwrap();
}

async fn reserve_and_release(products: &Aggregates<Product>, product_id: ProductId, order_id: OrderId) {
    let causation = Causation::request(Uuid::now_v7(), None);
    let now = chrono::Utc::now();
    let quantity = Quantity::parse_field("quantity", 1).unwrap();
    let reserved = products
        .execute(product_id, causation, || ProductCommand::Reserve {
            order_id,
            quantity,
            now,
        })
        .await
        .unwrap();
    assert_eq!(reserved.events.len(), 1);
    let released = products
        .execute(product_id, causation, || ProductCommand::Release { order_id, now })
        .await
        .unwrap();
    assert_eq!(released.events.len(), 1);
}

/// Appends the product's history and returns how many events it has.
async fn write_history(store: &dyn EventStore, product_id: ProductId, sku: &Sku, orders: u64) -> u64 {
    let stream = StreamName::new(ProductEvent::stream_name(product_id)).unwrap();
    let history = History::new(product_id, sku);
    let mut batch = vec![history.created()];
    let mut count = 0;
    let mut available = history.initial;
    for n in 0..orders {
        batch.extend(history.order(n, orders, &mut available));
        if batch.len() >= BATCH {
            count += flush(store, &stream, &mut batch).await;
        }
    }
    count + flush(store, &stream, &mut batch).await
}

async fn flush(store: &dyn EventStore, stream: &StreamName, batch: &mut Vec<ProductEvent>) -> u64 {
    if batch.is_empty() {
        return 0;
    }
    let encoded = batch.drain(..).map(encode).collect::<Vec<_>>();
    let count = encoded.len() as u64;
    store.append(stream, ExpectedRevision::Any, encoded).await.unwrap();
    count
}

fn encode(event: ProductEvent) -> NewEvent {
    let encoded = event.encode().unwrap();
    test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data)
}

struct History {
    product_id: ProductId,
    sku: Sku,
    name: ProductName,
    price: Price,
    initial: u32,
    at: chrono::DateTime<chrono::Utc>,
}

impl History {
    fn new(product_id: ProductId, sku: &Sku) -> Self {
        Self {
            product_id,
            sku: sku.clone(),
            name: ProductName::parse("Hot product").unwrap(),
            price: Price::from_minor_units(1_999).unwrap(),
            initial: STILL_HELD as u32,
            at: chrono::Utc::now(),
        }
    }

    fn created(&self) -> ProductEvent {
        ProductEvent::Created {
            product_id: self.product_id,
            sku: self.sku.clone(),
            name: self.name.clone(),
            price: self.price,
            available: level(self.initial),
            at: self.at,
        }
    }

    /// Order `n` of `orders`: refused, reserved and released, or (the last
    /// [`STILL_HELD`]) reserved and still held.
    fn order(&self, n: u64, orders: u64, available: &mut u32) -> Vec<ProductEvent> {
        let order_id = OrderId::from_uuid(Uuid::from_u128(u128::from(n) + 1));
        let one = Quantity::parse_field("quantity", 1).unwrap();
        if n.is_multiple_of(4) && n + STILL_HELD < orders {
            return vec![ProductEvent::StockReservationRefused {
                product_id: self.product_id,
                order_id,
                requested: Quantity::parse_field("quantity", 1000).unwrap(),
                available: level(*available),
                at: self.at,
            }];
        }
        *available -= 1;
        let reserved = ProductEvent::StockReserved {
            product_id: self.product_id,
            order_id,
            quantity: one,
            unit_price: self.price,
            sku: self.sku.clone(),
            name: self.name.clone(),
            available: level(*available),
            at: self.at,
        };
        if n + STILL_HELD >= orders {
            return vec![reserved];
        }
        *available += 1;
        let released = ProductEvent::StockReleased {
            product_id: self.product_id,
            order_id,
            quantity: one,
            available: level(*available),
            at: self.at,
        };
        vec![reserved, released]
    }
}

fn level(units: u32) -> StockLevel {
    StockLevel::parse_field("stock", i64::from(units)).unwrap()
}
