//! Loading aggregates (#11): a hot product loads from its snapshot and the
//! events after it, and no position handed to a client comes from a stream
//! read that carried none. Commands decided together (#15): one append,
//! each command its own answer, and no oversell when two batches race. A
//! stream held folded, or not held and presumed new, is decided on without
//! a read (#15), and a fold that missed another writer's events never
//! decides wrong.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use command_api::aggregates::{Aggregates, Causation, CommandError};
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId};
use domain::money::Price;
use domain::product::{Product, ProductCommand, ProductError, ProductEvent, ProductName, ProductState, Sku};
use domain::quantity::{Quantity, StockLevel};
use event_store::sqlite::SqliteEventStore;
use event_store::{
    AppendOutcome, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, Snapshot, StoreError, StreamFilter,
    StreamName, Subscription,
};
use uuid::Uuid;

/// The real embedded store, read as an older EventStoreDB server reads
/// streams: every event read from a stream carries `u64::MAX` for its
/// position. (There is no such server here; the client crate gives this
/// value for a stream read without a position.) It also counts the events
/// that stream reads return, the stream reads, and the appends.
struct OldServerReads {
    inner: SqliteEventStore,
    positionless: bool,
    events_read: AtomicUsize,
    stream_reads: AtomicUsize,
    appends: AtomicUsize,
}

impl OldServerReads {
    fn strip(&self, mut event: RecordedEvent) -> RecordedEvent {
        if self.positionless {
            event.position = Position::new(u64::MAX, u64::MAX);
        }
        event
    }
}

#[async_trait]
impl EventStore for OldServerReads {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        let events = self.inner.read_stream(stream, from, limit).await?;
        self.events_read.fetch_add(events.len(), Ordering::SeqCst);
        Ok(events.into_iter().map(|event| self.strip(event)).collect())
    }

    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        Ok(self.inner.read_last(stream).await?.map(|event| self.strip(event)))
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }

    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription {
        self.inner.subscribe_all(after, filter)
    }

    async fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StoreError> {
        self.inner.read_snapshot(stream).await
    }

    async fn write_snapshot(&self, stream: &StreamName, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.write_snapshot(stream, snapshot).await
    }

    async fn set_max_count(&self, stream: &StreamName, max_count: u64) -> Result<(), StoreError> {
        self.inner.set_max_count(stream, max_count).await
    }
}

fn open(folder: &tempfile::TempDir, positionless: bool) -> Arc<OldServerReads> {
    Arc::new(OldServerReads {
        inner: SqliteEventStore::open(folder.path().join("events.db")).unwrap(),
        positionless,
        events_read: AtomicUsize::new(0),
        stream_reads: AtomicUsize::new(0),
        appends: AtomicUsize::new(0),
    })
}

fn sku() -> Sku {
    Sku::parse("HOT-1").unwrap()
}

fn causation() -> Causation {
    Causation::request(Uuid::now_v7(), None)
}

fn create(stock: i64) -> ProductCommand {
    ProductCommand::Create {
        product_id: ProductId::for_sku(&sku()),
        sku: sku(),
        name: ProductName::parse("Hot").unwrap(),
        price: Price::from_minor_units(100).unwrap(),
        initial_stock: StockLevel::parse_field("stock", stock).unwrap(),
        now: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn positions_for_clients_never_come_from_stream_reads_without_one() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, true);
    let product_id = ProductId::for_sku(&sku());
    let created = Aggregates::<Product>::new(store.clone())
        .execute(product_id, causation(), || create(5))
        .await
        .unwrap();
    let appended_at = created.position.unwrap();
    // Another process (or this one after a restart) reads the stream.
    let products = Aggregates::<Product>::new(store.clone());
    let loaded = products.load(product_id).await.unwrap();
    let head = store.head().await.unwrap().unwrap();
    assert_eq!(loaded.position, Some(head), "the load's position");
    assert!(head >= appended_at);
    // A command that decides nothing answers where its stream is, too.
    let again = products.execute(product_id, causation(), || create(5)).await;
    assert!(again.is_err(), "a duplicate SKU is refused");
    let renamed = products
        .execute(product_id, causation(), || ProductCommand::Rename {
            name: ProductName::parse("Hot").unwrap(),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert!(renamed.events.is_empty());
    assert_eq!(renamed.position, Some(head), "a no-op's position");
    // A command that appends answers with its append's position.
    let restocked = products
        .execute(product_id, causation(), || ProductCommand::Restock {
            quantity: domain::quantity::RestockQuantity::parse_field("quantity", 1).unwrap(),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(restocked.position, store.head().await.unwrap());
}

/// Appends `orders` reserve-and-release pairs for the product straight
/// through the store, as the saga's commands would have.
async fn append_orders(store: &dyn EventStore, product_id: ProductId, orders: u128) {
    let stream = Aggregates::<Product>::stream_name(product_id);
    let one = Quantity::parse_field("quantity", 1).unwrap();
    let level = |units: i64| StockLevel::parse_field("stock", units).unwrap();
    let mut batch = Vec::new();
    for n in 0..orders {
        let order_id = OrderId::from_uuid(Uuid::from_u128(n + 1));
        let at = chrono::Utc::now();
        batch.push(ProductEvent::StockReserved {
            product_id,
            order_id,
            quantity: one,
            unit_price: Price::from_minor_units(100).unwrap(),
            sku: sku(),
            name: ProductName::parse("Hot").unwrap(),
            available: level(4),
            at,
        });
        batch.push(ProductEvent::StockReleased {
            product_id,
            order_id,
            quantity: one,
            available: level(5),
            at,
        });
    }
    for chunk in batch.chunks(1000) {
        let events = chunk.iter().map(encode).collect();
        store.append(&stream, ExpectedRevision::Any, events).await.unwrap();
    }
}

fn encode(event: &ProductEvent) -> NewEvent {
    let encoded = event.encode().unwrap();
    test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data)
}

#[tokio::test]
async fn a_hot_product_loads_from_its_snapshot_and_the_events_after_it() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, false);
    let product_id = ProductId::for_sku(&sku());
    let stream = Aggregates::<Product>::stream_name(product_id);
    Aggregates::<Product>::new(store.clone())
        .execute(product_id, causation(), || create(5))
        .await
        .unwrap();
    append_orders(store.as_ref(), product_id, 2_500).await;
    // The first process to fold the stream snapshots it.
    let first = Aggregates::<Product>::new(store.clone())
        .load(product_id)
        .await
        .unwrap();
    let snapshot = store
        .read_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot of 5,001 events");
    assert_eq!(snapshot.revision, 5_000);
    assert_eq!(snapshot.position, first.position);
    // More orders, then a restart: the snapshot and the events after it.
    append_orders(store.as_ref(), product_id, 10).await;
    let read_before = store.events_read.load(Ordering::SeqCst);
    let restarted = Aggregates::<Product>::new(store.clone())
        .load(product_id)
        .await
        .unwrap();
    assert_eq!(store.events_read.load(Ordering::SeqCst) - read_before, 20);
    let all = event_store::read_whole_stream(store.as_ref(), &stream).await.unwrap();
    let history: Vec<ProductEvent> = all
        .iter()
        .map(|e| ProductEvent::decode(&e.event_type, e.metadata.schema_version, &e.data).unwrap())
        .collect();
    assert_eq!(restarted.state, <Product as domain::decider::Decider>::fold(&history));
    assert_eq!(restarted.position, Some(all.last().unwrap().position));
    let ProductState::Active(product) = restarted.state else {
        panic!("the product exists")
    };
    assert_eq!(product.available.get(), 5);
}

fn reserve(order: u128, units: i64) -> ProductCommand {
    ProductCommand::Reserve {
        order_id: OrderId::from_uuid(Uuid::from_u128(order)),
        quantity: Quantity::parse_field("quantity", units).unwrap(),
        now: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn commands_on_one_product_share_one_append_and_each_gets_its_own_answer() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, false);
    let product_id = ProductId::for_sku(&sku());
    let products = Aggregates::<Product>::new(store.clone());
    products.execute(product_id, causation(), || create(3)).await.unwrap();
    let commands = vec![
        (causation(), reserve(1, 2)),
        (causation(), create(3)),     // refused: the product exists
        (causation(), reserve(2, 2)), // refused for stock: 1 unit left
        (
            causation(),
            ProductCommand::Release {
                order_id: OrderId::from_uuid(Uuid::from_u128(1)),
                now: chrono::Utc::now(),
            },
        ),
        (causation(), reserve(3, 3)),
    ];
    let appends = store.appends.load(Ordering::SeqCst);
    let answers = products.execute_each(product_id, &commands).await.unwrap();
    assert_eq!(
        store.appends.load(Ordering::SeqCst),
        appends + 1,
        "one append for the five commands"
    );
    let kinds: Vec<Result<Vec<String>, _>> = answers
        .iter()
        .map(|answer| {
            answer
                .as_ref()
                .map(|events| events.iter().map(|event| event.encode().unwrap().event_type).collect())
                .map_err(Clone::clone)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            Ok(vec!["StockReserved".to_owned()]),
            Err(domain::product::ProductError::DuplicateSku),
            Ok(vec!["StockReservationRefused".to_owned()]),
            Ok(vec!["StockReleased".to_owned()]),
            Ok(vec!["StockReserved".to_owned()]),
        ]
    );
    // Each event carries the causation of the command that decided it.
    let stream = Aggregates::<Product>::stream_name(product_id);
    let recorded = store.read_stream(&stream, 1, 10).await.unwrap();
    let correlations: Vec<Uuid> = recorded.iter().map(|event| event.metadata.correlation_id).collect();
    let expected: Vec<Uuid> = [0, 2, 3, 4].iter().map(|&n| commands[n].0.correlation_id).collect();
    assert_eq!(correlations, expected);
    // The cache folded what was appended: the next command sees it.
    let ProductState::Active(product) = products.load(product_id).await.unwrap().state else {
        panic!("the product exists");
    };
    assert_eq!(product.available.get(), 0);
    let fresh = Aggregates::<Product>::new(store.clone())
        .load(product_id)
        .await
        .unwrap();
    assert_eq!(fresh.state, ProductState::Active(product));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_racing_on_one_product_never_oversell_and_answer_each_order_once() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, false);
    let product_id = ProductId::for_sku(&sku());
    Aggregates::<Product>::new(store.clone())
        .execute(product_id, causation(), || create(5))
        .await
        .unwrap();
    for round in 0..20u128 {
        // Two replicas' saga batches, each with its own cache of the product.
        let (a, b) = (
            Aggregates::<Product>::new(store.clone()),
            Aggregates::<Product>::new(store.clone()),
        );
        let first: Vec<_> = (0..4).map(|n| (causation(), reserve(round * 100 + n + 1, 1))).collect();
        let second: Vec<_> = (4..8).map(|n| (causation(), reserve(round * 100 + n + 1, 1))).collect();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let run = |products: Aggregates<Product>, commands: Vec<(Causation, ProductCommand)>| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                products.load(product_id).await.unwrap();
                barrier.wait().await;
                products.execute_each(product_id, &commands).await.unwrap()
            })
        };
        let (x, y) = (run(a, first), run(b, second));
        let answers: Vec<_> = x.await.unwrap().into_iter().chain(y.await.unwrap()).collect();
        let reserved = answers
            .iter()
            .filter(|answer| matches!(answer.as_deref(), Ok([ProductEvent::StockReserved { .. }])))
            .count();
        let refused = answers
            .iter()
            .filter(|answer| matches!(answer.as_deref(), Ok([ProductEvent::StockReservationRefused { .. }])))
            .count();
        assert_eq!((reserved, refused), (5, 3), "round {round}: {answers:?}");
        // What the stream says agrees: each order answered once.
        let stream = Aggregates::<Product>::stream_name(product_id);
        let recorded = store.read_stream(&stream, 0, 10_000).await.unwrap();
        let mut answered = std::collections::HashMap::new();
        for event in &recorded {
            let decoded = ProductEvent::decode(&event.event_type, event.metadata.schema_version, &event.data).unwrap();
            if let ProductEvent::StockReserved { order_id, .. }
            | ProductEvent::StockReservationRefused { order_id, .. } = decoded
            {
                *answered.entry(order_id).or_insert(0) += 1;
            }
        }
        assert!(answered.values().all(|&n| n == 1), "round {round}: {answered:?}");
        assert_eq!(answered.len() as u128, (round + 1) * 8);
        // Give the units back for the next round.
        let releases: Vec<_> = (0..8)
            .map(|n| {
                let order_id = OrderId::from_uuid(Uuid::from_u128(round * 100 + n + 1));
                (
                    causation(),
                    ProductCommand::Release {
                        order_id,
                        now: chrono::Utc::now(),
                    },
                )
            })
            .collect();
        Aggregates::<Product>::new(store.clone())
            .execute_each(product_id, &releases)
            .await
            .unwrap();
    }
}

fn rename(name: &str) -> ProductCommand {
    ProductCommand::Rename {
        name: ProductName::parse(name).unwrap(),
        now: chrono::Utc::now(),
    }
}

fn release(order: u128) -> ProductCommand {
    ProductCommand::Release {
        order_id: OrderId::from_uuid(Uuid::from_u128(order)),
        now: chrono::Utc::now(),
    }
}

/// Stream reads and appends `run` made on `store`.
async fn counted<T>(store: &OldServerReads, run: impl std::future::Future<Output = T>) -> (T, usize, usize) {
    let (reads, appends) = (
        store.stream_reads.load(Ordering::SeqCst),
        store.appends.load(Ordering::SeqCst),
    );
    let result = run.await;
    (
        result,
        store.stream_reads.load(Ordering::SeqCst) - reads,
        store.appends.load(Ordering::SeqCst) - appends,
    )
}

#[tokio::test]
async fn a_stream_held_folded_is_decided_on_without_reading_it_again() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, false);
    let product_id = ProductId::for_sku(&sku());
    let products = Aggregates::<Product>::new(store.clone());
    let (created, reads, appends) = counted(&store, products.execute(product_id, causation(), || create(5))).await;
    created.unwrap();
    assert_eq!((reads, appends), (0, 1), "a stream not held is presumed new");

    let (reserved, reads, appends) = counted(&store, products.execute(product_id, causation(), || reserve(1, 2))).await;
    assert_eq!(reserved.unwrap().events.len(), 1);
    assert_eq!((reads, appends), (0, 1), "one command: its append, no read");

    let batch = [(causation(), reserve(2, 1)), (causation(), release(1))];
    let (answers, reads, appends) = counted(&store, products.execute_each(product_id, &batch)).await;
    assert!(answers.unwrap().iter().all(Result::is_ok));
    assert_eq!((reads, appends), (0, 1), "a batch: its append, no read");
}

/// Two replicas of the command API, each with its own folds, deciding on
/// one product over one store.
struct Replicas {
    folder: tempfile::TempDir,
    store: Arc<OldServerReads>,
    product_id: ProductId,
    here: Aggregates<Product>,
    elsewhere: Aggregates<Product>,
}

fn two_replicas() -> Replicas {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, false);
    Replicas {
        product_id: ProductId::for_sku(&sku()),
        here: Aggregates::new(store.clone()),
        elsewhere: Aggregates::new(store.clone()),
        store,
        folder,
    }
}

#[tokio::test]
async fn a_stream_not_held_is_read_once_a_decision_on_it_as_new_is_refused_or_loses() {
    let Replicas {
        folder: _folder,
        store,
        product_id,
        here,
        elsewhere,
    } = two_replicas();
    elsewhere.execute(product_id, causation(), || create(5)).await.unwrap();

    // As a new stream the product is missing: a refusal checked by a read.
    let (reserved, reads, appends) = counted(&store, here.execute(product_id, causation(), || reserve(1, 2))).await;
    assert!(
        matches!(
            reserved.unwrap().events.as_slice(),
            [ProductEvent::StockReserved { .. }]
        ),
        "the product exists"
    );
    assert_eq!((reads, appends), (1, 1));

    // As a new stream it could be created: the append expecting no stream
    // loses, and the read finds it created.
    let again = Aggregates::<Product>::new(store.clone());
    let (created, reads, appends) = counted(&store, again.execute(product_id, causation(), || create(5))).await;
    assert!(
        matches!(created, Err(CommandError::Refused(ProductError::DuplicateSku))),
        "{:?}",
        created.map(|decided| decided.events)
    );
    assert_eq!((reads, appends), (1, 1), "one append lost, one read, nothing appended");
    assert_eq!(
        again.load(product_id).await.unwrap().state,
        here.load(product_id).await.unwrap().state
    );
}

#[tokio::test]
async fn a_fold_that_missed_an_append_loses_the_race_and_decides_again_on_the_stream() {
    let Replicas {
        folder: _folder,
        store,
        product_id,
        here,
        elsewhere,
    } = two_replicas();
    here.execute(product_id, causation(), || create(2)).await.unwrap();
    // Another replica takes both units; this one's fold still has them.
    elsewhere
        .execute(product_id, causation(), || reserve(1, 2))
        .await
        .unwrap();

    let (decided, reads, appends) = counted(&store, here.execute(product_id, causation(), || reserve(2, 1))).await;
    let events = decided.unwrap().events;
    assert!(
        matches!(events.as_slice(), [ProductEvent::StockReservationRefused { .. }]),
        "decided on the stream, not the stale fold: {events:?}"
    );
    assert_eq!(
        (reads, appends),
        (1, 2),
        "one append lost to the other replica's, one read, one append won"
    );
}

#[tokio::test]
async fn a_fold_that_would_decide_nothing_reads_the_stream_before_answering() {
    let Replicas {
        folder: _folder,
        store,
        product_id,
        here,
        elsewhere,
    } = two_replicas();
    // This replica holds the stream folded while it does not exist yet.
    assert_eq!(here.load(product_id).await.unwrap().state, ProductState::NotCreated);
    elsewhere.execute(product_id, causation(), || create(5)).await.unwrap();
    elsewhere
        .execute(product_id, causation(), || reserve(1, 2))
        .await
        .unwrap();
    elsewhere
        .execute(product_id, causation(), || rename("Cold"))
        .await
        .unwrap();

    // On its fold the product is missing: a refusal it must not give.
    let (reserved, reads, appends) = counted(&store, here.execute(product_id, causation(), || reserve(2, 1))).await;
    assert!(
        matches!(
            reserved.unwrap().events.as_slice(),
            [ProductEvent::StockReserved { .. }]
        ),
        "the product exists"
    );
    assert_eq!((reads, appends), (1, 1), "the refusal was checked by a read");

    elsewhere
        .execute(product_id, causation(), || rename("Hot"))
        .await
        .unwrap();
    elsewhere
        .execute(product_id, causation(), || reserve(3, 1))
        .await
        .unwrap();
    // On its fold the name is "Cold" and order 3 holds nothing: both would
    // be no-ops, and neither is.
    let (renamed, reads, appends) = counted(&store, here.execute(product_id, causation(), || rename("Cold"))).await;
    assert_eq!(renamed.unwrap().events.len(), 1, "renamed back to Cold");
    assert_eq!((reads, appends), (1, 1));
    let batch = [(causation(), release(3))];
    let (answers, reads, _) = counted(&store, here.execute_each(product_id, &batch)).await;
    let answers = answers.unwrap();
    assert!(
        matches!(answers[0].as_deref(), Ok([ProductEvent::StockReleased { .. }])),
        "order 3's unit comes back: {answers:?}"
    );
    assert_eq!(reads, 0, "its fold was current after the rename");
    // A no-op on a current fold is still answered after a read.
    let (again, reads, appends) = counted(&store, here.execute(product_id, causation(), || rename("Cold"))).await;
    assert!(again.unwrap().events.is_empty());
    assert_eq!((reads, appends), (1, 0));
}
