//! Projections against real databases, Postgres and SQLite: a replay gives
//! the rows incremental processing gave, across stops; readers see the old
//! rows until a replay commits, and a running projector carries on after
//! it; events delivered twice change nothing; an event that cannot be
//! applied stops the projection without moving its checkpoint.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, StreamFilter, StreamName};
use migrations::views::{order_lines, orders, products, users};
use projectors::runner::ProjectorOptions;
use sea_orm::{DatabaseConnection, EntityTrait, TransactionTrait};
use tokio_util::sync::CancellationToken;

async fn sqlite() -> (DatabaseConnection, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    (projectors::database::connect(&url, 4).await.unwrap(), folder)
}

async fn postgres() -> (DatabaseConnection, ()) {
    let url = support::postgres::fresh_database().await;
    (projectors::database::connect(&url, 4).await.unwrap(), ())
}

/// Runs every projection until each has reached `head`, then stops them.
async fn project_until(store: &Arc<dyn EventStore>, db: &DatabaseConnection, head: Position, batch_size: usize) {
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(
        Arc::clone(store),
        db.clone(),
        ProjectorOptions {
            batch_size,
            ..Default::default()
        },
        shutdown.clone(),
    );
    caught_up(&running, head).await;
    shutdown.cancel();
    running.stopped().await;
}

/// Waits until every running projection has reached `head`.
async fn caught_up(running: &projectors::supervisor::Running, head: Position) {
    caught_up_these(running, head, |_| true).await;
}

/// Waits until the running projections `which` picks have reached `head`.
async fn caught_up_these(running: &projectors::supervisor::Running, head: Position, which: impl Fn(&str) -> bool) {
    for (_, progress) in running.progress.iter().filter(|(name, _)| which(name)) {
        let mut progress = progress.clone();
        tokio::time::timeout(
            Duration::from_secs(30),
            progress.wait_for(|p| p.is_some_and(|p| p >= head)),
        )
        .await
        .expect("the projection caught up within 30 s")
        .unwrap();
    }
}

/// Every row of every view, in a stable order, as text.
async fn rows(db: &DatabaseConnection) -> Vec<String> {
    let mut all = rows_of::<products::Entity>(db).await;
    all.extend(rows_of::<users::Entity>(db).await);
    all.extend(rows_of::<orders::Entity>(db).await);
    all.extend(rows_of::<order_lines::Entity>(db).await);
    all.sort();
    all
}

async fn rows_of<E: EntityTrait>(db: &DatabaseConnection) -> Vec<String> {
    let rows = E::find().all(db).await.unwrap();
    rows.iter().map(|row| format!("{row:?}")).collect()
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (db, _keep) = super::sqlite().await;
                    super::$case(db).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (db, _keep) = super::postgres().await;
                    super::$case(db).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_replay_gives_the_rows_that_incremental_processing_gave,
    readers_see_the_old_rows_until_a_replay_commits,
    a_running_projector_carries_on_after_a_replay,
    events_delivered_twice_change_nothing,
    one_instance_runs_each_projection_and_another_takes_over_when_it_stops,
    a_lease_left_by_a_crashed_instance_expires,
    an_instance_that_loses_its_lease_stops_until_it_gets_it_back,
    a_replay_racing_the_first_batches_neither_deadlocks_nor_stops_a_projection,
    a_replay_never_moves_a_checkpoint_back,
    an_event_that_cannot_be_applied_stops_the_projection_and_keeps_its_checkpoint,
);

async fn a_replay_gives_the_rows_that_incremental_processing_gave(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    shop.trade(0).await;
    // Small batches, and a stop between two runs, as a crash would leave it.
    project_until(&shop.store, &db, shop.head().await, 7).await;
    shop.trade(1).await;
    project_until(&shop.store, &db, shop.head().await, 7).await;
    let incremental = rows(&db).await;
    assert!(
        incremental.iter().any(|row| row.contains("status: \"cancelled\"")),
        "{incremental:#?}"
    );
    assert!(incremental.iter().any(|row| row.contains("status: \"rejected\"")));
    assert!(
        !incremental.iter().any(|row| row.contains("argon2")),
        "no password hash in the views"
    );

    let head = shop.head().await;
    for projection in projectors::all() {
        let reached = projectors::replay::rebuild(shop.store.as_ref(), &db, projection.as_ref(), 500)
            .await
            .unwrap();
        assert_eq!(reached, Some(head));
        assert_eq!(
            projectors::checkpoint::load(&db, projection.name()).await.unwrap(),
            Some(head)
        );
    }
    assert_eq!(rows(&db).await, incremental);
}

async fn readers_see_the_old_rows_until_a_replay_commits(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    for round in 0..3 {
        shop.trade(round).await;
    }
    project_until(&shop.store, &db, shop.head().await, 500).await;
    let before = rows(&db).await;
    let orders = projectors::named("orders").unwrap();
    // Batches of one event make the rebuild slow enough to read during it.
    let rebuild = tokio::spawn({
        let (store, db) = (Arc::clone(&shop.store), db.clone());
        async move { projectors::replay::rebuild(store.as_ref(), &db, orders.as_ref(), 1).await }
    });
    let mut reads_during = 0;
    while !rebuild.is_finished() {
        assert_eq!(rows(&db).await, before, "a read during the rebuild");
        reads_during += 1;
    }
    rebuild.await.unwrap().unwrap();
    assert!(reads_during > 0, "the test read nothing while the rebuild ran");
    assert_eq!(rows(&db).await, before);
}

async fn a_running_projector_carries_on_after_a_replay(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(
        Arc::clone(&shop.store),
        db.clone(),
        ProjectorOptions::default(),
        shutdown.clone(),
    );
    shop.trade(0).await;
    caught_up(&running, shop.head().await).await;
    for projection in projectors::all() {
        projectors::replay::rebuild(shop.store.as_ref(), &db, projection.as_ref(), 7)
            .await
            .unwrap();
    }
    shop.trade(1).await;
    caught_up(&running, shop.head().await).await;
    shutdown.cancel();
    running.stopped().await;
    let carried_on = rows(&db).await;
    assert!(
        carried_on.iter().any(|row| row.contains("R1-0")),
        "round 1 is in the views"
    );
    for projection in projectors::all() {
        projectors::replay::rebuild(shop.store.as_ref(), &db, projection.as_ref(), 500)
            .await
            .unwrap();
    }
    assert_eq!(rows(&db).await, carried_on);
}

async fn events_delivered_twice_change_nothing(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    shop.trade(0).await;
    let events = shop
        .store
        .read_all(None, usize::MAX, &StreamFilter::all())
        .await
        .unwrap();
    // The whole log as one batch, then event by event, then as one batch again.
    let apply = |batch_size: usize| {
        let (db, events) = (&db, &events);
        async move {
            for projection in projectors::all() {
                let transaction = db.begin().await.unwrap();
                for batch in events.chunks(batch_size) {
                    projection.apply(&transaction, batch).await.unwrap();
                }
                transaction.commit().await.unwrap();
            }
        }
    };
    apply(events.len()).await;
    let once = rows(&db).await;
    assert!(
        once.iter().any(|row| row.contains("status: \"cancelled\"")),
        "{once:#?}"
    );
    apply(1).await;
    assert_eq!(rows(&db).await, once);
    apply(events.len()).await;
    assert_eq!(rows(&db).await, once);
}

async fn an_event_that_cannot_be_applied_stops_the_projection_and_keeps_its_checkpoint(db: DatabaseConnection) {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let metadata = EventMetadata {
        correlation_id: uuid::Uuid::new_v4(),
        causation_id: None,
        user_id: None,
        schema_version: 1,
    };
    let event = |event_type: &str, data: serde_json::Value| NewEvent {
        id: uuid::Uuid::new_v4(),
        event_type: event_type.to_owned(),
        data: serde_json::to_vec(&data).unwrap(),
        metadata: metadata.clone(),
    };
    let stream = StreamName::new(format!("order-{}", uuid::Uuid::new_v4())).unwrap();
    let unknown = store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("OrderGiftWrapped", serde_json::json!({}))],
        )
        .await
        .unwrap();
    store
        .append(
            &stream,
            ExpectedRevision::Any,
            vec![event("OrderPlaced", serde_json::json!({"oops": true}))],
        )
        .await
        .unwrap();
    let orders = projectors::named("orders").unwrap();
    let (progress, _) = tokio::sync::watch::channel(None);
    let outcome = projectors::runner::run(
        Arc::clone(&store),
        db.clone(),
        orders,
        ProjectorOptions {
            batch_size: 1,
            ..Default::default()
        },
        progress,
        CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(outcome, Err(projectors::runner::ProjectorError::Apply { .. })),
        "{outcome:?}"
    );
    assert_eq!(
        projectors::checkpoint::load(&db, "orders").await.unwrap(),
        Some(unknown.position),
        "the unknown type was passed over; the broken event was not"
    );
}

/// A supervisor with a short lease (renewed every second), so that
/// take-overs happen within a test.
fn instance(
    store: &Arc<dyn EventStore>,
    db: &DatabaseConnection,
    shutdown: &CancellationToken,
) -> projectors::supervisor::Running {
    let options = ProjectorOptions {
        lease_ttl: Duration::from_secs(3),
        ..Default::default()
    };
    projectors::supervisor::start(Arc::clone(store), db.clone(), options, shutdown.clone())
}

async fn one_instance_runs_each_projection_and_another_takes_over_when_it_stops(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    shop.trade(0).await;
    let (first_stop, second_stop) = (CancellationToken::new(), CancellationToken::new());
    let first = instance(&shop.store, &db, &first_stop);
    caught_up(&first, shop.head().await).await;
    let second = instance(&shop.store, &db, &second_stop);
    shop.trade(1).await;
    caught_up(&first, shop.head().await).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        second.progress.values().all(|progress| progress.borrow().is_none()),
        "the second instance waits while the first holds every lease"
    );
    first_stop.cancel();
    first.stopped().await;
    shop.trade(2).await;
    caught_up(&second, shop.head().await).await;
    second_stop.cancel();
    second.stopped().await;
    let rows_after_take_over = rows(&db).await;
    assert!(
        rows_after_take_over.iter().any(|row| row.contains("R2-0")),
        "round 2 is in the views"
    );
    for projection in projectors::all() {
        projectors::replay::rebuild(shop.store.as_ref(), &db, projection.as_ref(), 500)
            .await
            .unwrap();
    }
    assert_eq!(rows(&db).await, rows_after_take_over);
}

async fn a_lease_left_by_a_crashed_instance_expires(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    shop.trade(0).await;
    for projection in projectors::all() {
        let taken = projectors::lease::acquire(&db, projection.name(), "crashed", Duration::from_millis(1_500))
            .await
            .unwrap();
        assert!(taken);
    }
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let running = instance(&shop.store, &db, &shutdown);
    caught_up(&running, shop.head().await).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "it waited for the lease to expire: {:?}",
        started.elapsed()
    );
    shutdown.cancel();
    running.stopped().await;
}

async fn an_instance_that_loses_its_lease_stops_until_it_gets_it_back(db: DatabaseConnection) {
    use migrations::views::projection_leases;
    use sea_orm::{ActiveModelTrait, Set};

    let shop = support::shop::start().await;
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let running = instance(&shop.store, &db, &shutdown);
    caught_up(&running, shop.head().await).await;
    // Another instance took the orders lease (as after a long pause here).
    projection_leases::ActiveModel {
        projection: Set("orders".to_owned()),
        holder: Set("usurper".to_owned()),
        expires_at: Set(chrono::Utc::now() + chrono::Duration::seconds(60)),
    }
    .update(&db)
    .await
    .unwrap();
    // The instance notices at its next renewal, within a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = *running.progress["orders"].borrow();
    shop.trade(1).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(*running.progress["orders"].borrow(), before, "orders stopped here");
    caught_up_these(&running, shop.head().await, |name| name != "orders").await;
    projectors::lease::release(&db, "orders", "usurper").await.unwrap();
    caught_up(&running, shop.head().await).await;
    shutdown.cancel();
    running.stopped().await;
}

async fn a_replay_racing_the_first_batches_neither_deadlocks_nor_stops_a_projection(db: DatabaseConnection) {
    let shop = support::shop::start().await;
    shop.trade(0).await;
    let head = shop.head().await;
    // No checkpoint yet: the projectors' first batches and the rebuilds
    // start together.
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(
        Arc::clone(&shop.store),
        db.clone(),
        ProjectorOptions {
            batch_size: 3,
            ..Default::default()
        },
        shutdown.clone(),
    );
    for projection in projectors::all() {
        projectors::replay::rebuild(shop.store.as_ref(), &db, projection.as_ref(), 3)
            .await
            .unwrap();
    }
    caught_up(&running, head).await;
    shutdown.cancel();
    running.stopped().await;
}

async fn a_replay_never_moves_a_checkpoint_back(db: DatabaseConnection) {
    let shop = Arc::new(support::shop::start().await);
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let running = instance(&shop.store, &db, &shutdown);
    let trading = tokio::spawn({
        let shop = Arc::clone(&shop);
        async move {
            for round in 1..4 {
                shop.trade(round).await;
            }
        }
    });
    let orders = projectors::named("orders").unwrap();
    let mut replays = 0;
    while !trading.is_finished() || replays < 3 {
        let before = projectors::checkpoint::load(&db, "orders").await.unwrap();
        projectors::replay::rebuild(shop.store.as_ref(), &db, orders.as_ref(), 500)
            .await
            .unwrap();
        let after = projectors::checkpoint::load(&db, "orders").await.unwrap();
        assert!(after >= before, "the checkpoint went from {before:?} back to {after:?}");
        replays += 1;
    }
    trading.await.unwrap();
    caught_up(&running, shop.head().await).await;
    shutdown.cancel();
    running.stopped().await;
}
