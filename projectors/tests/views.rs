//! Projections against real databases, Postgres and SQLite: a replay gives
//! the rows incremental processing gave, across stops; readers see the old
//! rows until a replay commits, and a running projector carries on after
//! it; events delivered again by a stale projector change nothing, and two
//! projectors at once without leases apply each event once; leases hand
//! projections from instance to instance (lease rows deciding on SQLite
//! only); an event that cannot be applied
//! stops the projection without moving its checkpoint.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::product::ProductEvent;
use event_store::{EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, StreamName};
use projectors::runner::ProjectorOptions;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement};
use test_support::{FaultyStore, Shop};
use tokio_util::sync::CancellationToken;
use views::tables::{order_lines, orders, products, users};

async fn sqlite() -> (DatabaseConnection, tempfile::TempDir) {
    let (url, folder) = test_support::sqlite_views();
    (
        projectors::database::connect_and_migrate(&url, 4).await.unwrap(),
        folder,
    )
}

async fn postgres() -> (DatabaseConnection, ()) {
    let url = test_support::postgres::fresh_database().await;
    (projectors::database::connect_and_migrate(&url, 4).await.unwrap(), ())
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

/// The rows of one table, read with one statement, in a stable order, as
/// text.
async fn rows_of<E: EntityTrait>(db: &DatabaseConnection) -> Vec<String> {
    let rows = E::find().all(db).await.unwrap();
    let mut rows: Vec<String> = rows.iter().map(|row| format!("{row:?}")).collect();
    rows.sort();
    rows
}

/// The rows a rebuild of every projection from the log gives in a fresh
/// database of the same kind as `like`.
async fn rebuilt_rows(store: &Arc<dyn EventStore>, like: &DatabaseConnection) -> Vec<String> {
    let (fresh, _kept) = fresh_like(like).await;
    for projection in projectors::all() {
        projectors::generations::rebuild::replay(store, &fresh, &projection, 500)
            .await
            .unwrap();
    }
    rows(&fresh).await
}

/// The rows the projectors give in a fresh database of the same kind as
/// `like`, following the log from its start to its head.
async fn projected_rows(store: &Arc<dyn EventStore>, like: &DatabaseConnection) -> Vec<String> {
    let (fresh, _kept) = fresh_like(like).await;
    project_until(store, &fresh, store.head().await.unwrap().unwrap(), 500).await;
    rows(&fresh).await
}

/// A fresh database of the same kind as `like`, and what keeps it.
async fn fresh_like(like: &DatabaseConnection) -> (DatabaseConnection, Option<tempfile::TempDir>) {
    match like.get_database_backend() {
        DbBackend::Postgres => (postgres().await.0, None),
        _ => {
            let (db, folder) = sqlite().await;
            (db, Some(folder))
        }
    }
}

/// Asserts that `db` holds the rows a rebuild from `store` gives, and that
/// every projection's checkpoint is at `head`.
async fn assert_rebuilt_and_at(db: &DatabaseConnection, store: &Arc<dyn EventStore>, head: Position) {
    assert_eq!(rows(db).await, rebuilt_rows(store, db).await);
    for projection in projectors::all() {
        assert_eq!(
            views::checkpoint::load(db, projection.name()).await.unwrap(),
            Some(head),
            "{}",
            projection.name()
        );
    }
}

/// Another pool of connections to the database `db` uses.
async fn another_pool(db: &DatabaseConnection) -> DatabaseConnection {
    let url = match db.get_database_backend() {
        DbBackend::Postgres => {
            let name = db
                .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT current_database()"))
                .await
                .unwrap()
                .unwrap();
            test_support::postgres::database_url(&name.try_get_by_index::<String>(0).unwrap())
        }
        _ => {
            let main = db
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA database_list"))
                .await
                .unwrap()
                .unwrap();
            format!("sqlite://{}?mode=rwc", main.try_get::<String>("", "file").unwrap())
        }
    };
    projectors::database::connect_and_migrate(&url, 4).await.unwrap()
}

/// An event store holding copies of `events`, at the same positions.
async fn copy_of(events: &[RecordedEvent]) -> (Arc<dyn EventStore>, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    for event in events {
        let copied = store
            .append(
                &StreamName::new(event.stream.clone()).unwrap(),
                ExpectedRevision::Any,
                vec![NewEvent {
                    id: event.id,
                    event_type: event.event_type.clone(),
                    data: event.data.clone(),
                    metadata: event.metadata.clone(),
                }],
            )
            .await
            .unwrap();
        assert_eq!(copied.position, event.position);
    }
    (store, folder)
}

/// A projection run on its own, and the progress it reports.
type Runner = (
    tokio::task::JoinHandle<Result<(), projectors::runner::ProjectorError>>,
    tokio::sync::watch::Receiver<Option<Position>>,
);

/// Every projection run on its own (no supervisor, no lease) over `store`
/// into `db` until `shutdown`.
fn run_each(
    store: &Arc<dyn EventStore>,
    db: &DatabaseConnection,
    options: ProjectorOptions,
    shutdown: &CancellationToken,
) -> Vec<Runner> {
    projectors::all()
        .into_iter()
        .map(|projection| {
            let (sender, progress) = tokio::sync::watch::channel(None);
            let runner = tokio::spawn(projectors::runner::run(
                Arc::clone(store),
                db.clone(),
                projection,
                options.clone(),
                sender,
                shutdown.clone(),
            ));
            (runner, progress)
        })
        .collect()
}

/// Waits until every runner has reported `position`: `what` must happen
/// within 30 s.
async fn all_at(runners: &mut [Runner], position: Position, what: &str) {
    for (_, progress) in runners {
        tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| *p == Some(position)))
            .await
            .unwrap_or_else(|_| panic!("{what} within 30 s"))
            .unwrap();
    }
}

/// Stops the runners, each of which must end without an error.
async fn stop(runners: Vec<Runner>, shutdown: &CancellationToken) {
    shutdown.cancel();
    for (runner, _) in runners {
        runner.await.unwrap().unwrap();
    }
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
    events_delivered_again_change_nothing_once_the_views_have_moved_past_them,
    events_a_subscription_delivers_again_change_nothing,
    two_projectors_without_leases_apply_each_event_once,
    one_instance_runs_each_projection_and_another_takes_over_when_it_stops,
    a_replay_racing_the_first_batches_neither_deadlocks_nor_stops_a_projection,
    a_replay_never_moves_a_checkpoint_back,
    an_event_that_cannot_be_read_is_parked_once_and_the_projection_goes_on,
);

/// Lease rows decide who runs a projection only on SQLite; on Postgres a
/// session lock does (`tests/session_lock.rs`, `tests/failover.rs`).
mod on_sqlite_leases {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_left_by_a_crashed_instance_expires() {
        let (db, _keep) = super::sqlite().await;
        super::a_lease_left_by_a_crashed_instance_expires(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_that_loses_its_lease_stops_until_it_gets_it_back() {
        let (db, _keep) = super::sqlite().await;
        super::an_instance_that_loses_its_lease_stops_until_it_gets_it_back(db).await;
    }
}

async fn a_replay_gives_the_rows_that_incremental_processing_gave(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    // Small batches, and a stop between two runs, as a crash would leave it.
    project_until(&shop.app.store, &db, shop.app.head().await, 7).await;
    shop.trade(1).await;
    project_until(&shop.app.store, &db, shop.app.head().await, 7).await;
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

    let head = shop.app.head().await;
    for projection in projectors::all() {
        let reached = projectors::generations::rebuild::replay(&shop.app.store, &db, &projection, 500)
            .await
            .unwrap();
        assert_eq!(reached, Some(head));
        assert_eq!(
            views::checkpoint::load(&db, projection.name()).await.unwrap(),
            Some(head)
        );
    }
    assert_eq!(rows(&db).await, incremental);
}

async fn readers_see_the_old_rows_until_a_replay_commits(db: DatabaseConnection) {
    let shop = Shop::start().await;
    for round in 0..3 {
        shop.trade(round).await;
    }
    project_until(&shop.app.store, &db, shop.app.head().await, 500).await;
    let from_the_log = rows_of::<orders::Entity>(&db).await;
    let lines = rows_of::<order_lines::Entity>(&db).await;
    mark_an_order(&db).await;
    let old = rows_of::<orders::Entity>(&db).await;
    assert_ne!(old, from_the_log, "the mark is in the old rows");
    let orders = projectors::named("orders").unwrap();
    // Batches of one event make the rebuild slow enough to read during it.
    let rebuild = tokio::spawn({
        let (store, db) = (Arc::clone(&shop.app.store), db.clone());
        async move { projectors::generations::rebuild::replay(&store, &db, &orders, 1).await }
    });
    let (mut old_reads, mut rebuilt_reads) = (0, 0);
    loop {
        let finished = rebuild.is_finished();
        let read = rows_of::<orders::Entity>(&db).await;
        if read == old {
            assert_eq!(rebuilt_reads, 0, "a read saw the old rows after the rebuilt ones");
            old_reads += 1;
        } else {
            assert!(
                read == from_the_log,
                "a read during the rebuild saw rows in between: {read:#?}"
            );
            rebuilt_reads += 1;
        }
        assert_eq!(rows_of::<order_lines::Entity>(&db).await, lines);
        if finished {
            break;
        }
    }
    rebuild.await.unwrap().unwrap();
    assert!(old_reads > 0, "the test read the old rows while the rebuild ran");
    assert_eq!(
        rows_of::<orders::Entity>(&db).await,
        from_the_log,
        "the rebuild replaced the marked row"
    );
}

/// Gives an order a status no event sets: only a rebuild takes it away.
async fn mark_an_order(db: &DatabaseConnection) {
    let order = orders::Entity::find().one(db).await.unwrap().unwrap();
    orders::Entity::update_many()
        .col_expr(orders::Column::Status, Expr::value("marked by the test"))
        .filter(orders::Column::OrderId.eq(order.order_id))
        .exec(db)
        .await
        .unwrap();
}

async fn a_running_projector_carries_on_after_a_replay(db: DatabaseConnection) {
    let shop = Shop::start().await;
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(
        Arc::clone(&shop.app.store),
        db.clone(),
        ProjectorOptions::default(),
        shutdown.clone(),
    );
    shop.trade(0).await;
    caught_up(&running, shop.app.head().await).await;
    for projection in projectors::all() {
        projectors::generations::rebuild::replay(&shop.app.store, &db, &projection, 7)
            .await
            .unwrap();
    }
    shop.trade(1).await;
    caught_up(&running, shop.app.head().await).await;
    shutdown.cancel();
    running.stopped().await;
    let carried_on = rows(&db).await;
    assert!(
        carried_on.iter().any(|row| row.contains("R1-0")),
        "round 1 is in the views"
    );
    for projection in projectors::all() {
        projectors::generations::rebuild::replay(&shop.app.store, &db, &projection, 500)
            .await
            .unwrap();
    }
    assert_eq!(rows(&db).await, carried_on);
}

/// The slice of `log` from placing an order that was confirmed, then
/// cancelled, to just before its confirmation: applied again over the rows
/// of the whole log, it would set the order back to pending and hold its
/// stock again.
fn placing_of_a_cancelled_order(log: &[RecordedEvent]) -> std::ops::Range<usize> {
    let cancelled = &log
        .iter()
        .find(|event| event.event_type == "OrderCancelled")
        .unwrap()
        .stream;
    let at = |event_type: &str| {
        log.iter()
            .position(|event| &event.stream == cancelled && event.event_type == event_type)
            .unwrap()
    };
    at("OrderPlaced")..at("OrderConfirmed")
}

async fn events_delivered_again_change_nothing_once_the_views_have_moved_past_them(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let log = shop.app.events().await;
    let slice = placing_of_a_cancelled_order(&log);
    let (slice_start, slice_end) = (slice.start, slice.end);
    let before_slice = log[slice_start - 1].position;
    let head = log.last().unwrap().position;
    let all_projections = projectors::all();
    let transaction = projectors::database::begin_write(&db).await.unwrap();
    for projection in &all_projections {
        projection
            .apply(&live(&transaction), &log[..slice_start])
            .await
            .unwrap();
        views::checkpoint::overwrite(&transaction, projection.name(), Some(before_slice))
            .await
            .unwrap();
    }
    transaction.commit().await.unwrap();

    // Stale projectors: they read their checkpoint and the slice, then wait
    // for the views while another projector moves them to the head. Their
    // log ends with the slice, so nothing they read afterwards could mend
    // what applying it would do.
    let (stale_log, _kept) = copy_of(&log[..slice_end]).await;
    let other = projectors::database::begin_write(&db).await.unwrap();
    for projection in &all_projections {
        projectors::database::lock_projection(&other, projection.name())
            .await
            .unwrap();
    }
    let shutdown = CancellationToken::new();
    let mut stale = run_each(&stale_log, &db, ProjectorOptions::default(), &shutdown);
    all_at(
        &mut stale,
        before_slice,
        "the stale projectors reading their checkpoint",
    )
    .await;
    for projection in &all_projections {
        projection.apply(&live(&other), &log[slice_start..]).await.unwrap();
        let moved = views::checkpoint::advance(&other, projection.name(), Some(before_slice), head)
            .await
            .unwrap();
        assert!(moved);
    }
    other.commit().await.unwrap();

    for (_, progress) in &mut stale {
        let after = *tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| *p != Some(before_slice)))
            .await
            .expect("the stale projector went on within 30 s")
            .unwrap();
        assert_eq!(
            after,
            Some(head),
            "it found the checkpoint moved and started again from it"
        );
    }
    stop(stale, &shutdown).await;
    let after = rows(&db).await;
    assert!(
        after.iter().any(|row| row.contains("status: \"cancelled\"")),
        "{after:#?}"
    );
    assert_rebuilt_and_at(&db, &shop.app.store, head).await;
}

async fn events_a_subscription_delivers_again_change_nothing(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let log = shop.app.events().await;
    let head = log.last().unwrap().position;
    project_until(&shop.app.store, &db, head, 500).await;
    // The slice delivered again, and nothing after it.
    let slice = placing_of_a_cancelled_order(&log);
    let (slice_start, slice_end) = (slice.start, slice.end);
    let (copy, _kept) = copy_of(&log[..slice_end]).await;
    let delivers_again = Arc::new(FaultyStore::new(copy));
    delivers_again.deliver_again_after(Some(log[slice_start - 1].position));
    let log_again: Arc<dyn EventStore> = delivers_again;
    let shutdown = CancellationToken::new();
    let mut running = run_each(&log_again, &db, ProjectorOptions::default(), &shutdown);
    all_at(&mut running, head, "the projectors reading their checkpoint").await;
    // Nothing may happen: the slice is read at once, so half a second is
    // ample for a projector that applied it to move its checkpoint back.
    for (_, progress) in &mut running {
        let moved = tokio::time::timeout(Duration::from_millis(500), progress.changed()).await;
        assert!(moved.is_err(), "the checkpoint moved to {:?}", *progress.borrow());
    }
    stop(running, &shutdown).await;
    assert_rebuilt_and_at(&db, &shop.app.store, head).await;
}

/// Two projectors on the same views at once, with no lease between them,
/// while the log grows: the checkpoint's compare-and-set alone keeps them
/// from applying anything twice or moving anything back.
async fn two_projectors_without_leases_apply_each_event_once(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let mut projectors = Vec::new();
    // Each instance with its own pool, as two processes would be, and with
    // batches of other sizes, so their batches overlap without matching.
    for batch_size in [3, 5] {
        let pool = another_pool(&db).await;
        let options = ProjectorOptions {
            batch_size,
            ..Default::default()
        };
        projectors.extend(run_each(&shop.app.store, &pool, options, &shutdown));
    }
    let watching = CancellationToken::new();
    let watcher = tokio::spawn({
        let (db, watching) = (db.clone(), watching.clone());
        async move {
            let mut seen = std::collections::BTreeMap::new();
            let mut reads = 0;
            while !watching.is_cancelled() {
                for (name, position) in views::checkpoint::all(&db).await.unwrap() {
                    if let Some(earlier) = seen.insert(name.clone(), position) {
                        assert!(
                            position >= earlier,
                            "the {name} checkpoint went back from {earlier} to {position}"
                        );
                    }
                }
                reads += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            reads
        }
    });
    for round in 1..3 {
        shop.trade(round).await;
    }
    let head = shop.app.head().await;
    for (_, progress) in &mut projectors {
        tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| *p >= Some(head)))
            .await
            .expect("both projectors caught up within 30 s")
            .unwrap();
    }
    stop(projectors, &shutdown).await;
    watching.cancel();
    assert!(watcher.await.unwrap() > 0);

    assert_eq!(rows(&db).await, rebuilt_rows(&shop.app.store, &db).await);
    let log = shop.app.events().await;
    let of_type = |event_type: &str| log.iter().filter(|event| event.event_type == event_type).count();
    assert_eq!(
        products::Entity::find().all(&db).await.unwrap().len(),
        of_type("ProductCreated")
    );
    assert_eq!(
        users::Entity::find().all(&db).await.unwrap().len(),
        of_type("AccountRegistered")
    );
    assert_eq!(
        orders::Entity::find().all(&db).await.unwrap().len(),
        of_type("OrderPlaced")
    );
    let mut stock = std::collections::BTreeMap::new();
    for event in projectors::projection::decode_all::<ProductEvent>(&log).unwrap() {
        let change = match &event {
            ProductEvent::Created { available, .. } => i64::from(available.get()),
            ProductEvent::Restocked { quantity, .. } => i64::from(*quantity),
            ProductEvent::StockReserved { quantity, .. } => -i64::from(quantity.get()),
            ProductEvent::StockReleased { quantity, .. } => i64::from(quantity.get()),
            _ => 0,
        };
        *stock.entry(event.product_id().as_uuid()).or_insert(0) += change;
    }
    let viewed: std::collections::BTreeMap<_, _> = products::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|product| (product.product_id, product.available))
        .collect();
    assert_eq!(viewed, stock, "each stock change counted once");
}

/// Two projectors of the orders projection (no leases) meet an event they
/// cannot read: it is tried, then parked once, and both go on past it.
async fn an_event_that_cannot_be_read_is_parked_once_and_the_projection_goes_on(db: DatabaseConnection) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let event = |event_type: &str, data: serde_json::Value| {
        test_support::new_event(event_type, 1, serde_json::to_vec(&data).unwrap())
    };
    let stream = test_support::order_stream_name(&uuid::Uuid::new_v4().to_string());
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("OrderGiftWrapped", serde_json::json!({}))],
        )
        .await
        .unwrap();
    let broken = store
        .append(
            &stream,
            ExpectedRevision::Any,
            vec![event("OrderPlaced", serde_json::json!({"oops": true}))],
        )
        .await
        .unwrap();
    let other = test_support::order_stream_name(&uuid::Uuid::new_v4().to_string());
    let after = store
        .append(
            &other,
            ExpectedRevision::NoStream,
            vec![event("OrderGiftWrapped", serde_json::json!({}))],
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let options = ProjectorOptions {
        batch_size: 1,
        quarantine: projectors::quarantine::Quarantine {
            attempts: 2,
            pause: Duration::from_millis(50),
        },
        ..Default::default()
    };
    let mut runners: Vec<Runner> = (0..2)
        .map(|_| {
            let (sender, progress) = tokio::sync::watch::channel(None);
            let orders = projectors::named("orders").unwrap();
            let runner = projectors::runner::run(
                Arc::clone(&store),
                db.clone(),
                orders,
                options.clone(),
                sender,
                shutdown.clone(),
            );
            (tokio::spawn(runner), progress)
        })
        .collect();
    all_at(
        &mut runners,
        after.position,
        "both projectors went past the broken event",
    )
    .await;
    shutdown.cancel();
    for (runner, _) in runners {
        runner.await.unwrap().unwrap();
    }
    let parked = projectors::parked::all(&db).await.unwrap();
    assert_eq!(parked.len(), 1, "parked once: {parked:?}");
    assert_eq!(projectors::parked::position(&parked[0]), broken.position);
    assert_eq!((parked[0].subscriber.as_str(), parked[0].attempts), ("orders", 2));
    assert_eq!(
        views::checkpoint::load(&db, "orders").await.unwrap(),
        Some(after.position),
        "the unknown type was passed over, the broken event parked"
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

/// Every projection's lease holder, when one instance holds them all.
async fn sole_holder(db: &DatabaseConnection) -> String {
    let leases = projectors::lease::all(db).await.unwrap();
    assert_eq!(leases.len(), projectors::all().len(), "{leases:?}");
    assert!(
        leases.iter().all(|lease| lease.holder == leases[0].holder),
        "one instance holds every lease: {leases:?}"
    );
    leases[0].holder.clone()
}

/// Waits until `holder` has renewed its leases on `names` `times` times each
/// (their expiry moved on). Every instance renews on the same clock, every
/// third of the lease, so this also waits for the other instances' turns,
/// however loaded the machine is.
async fn renewed(db: &DatabaseConnection, holder: &str, names: &[&str], times: usize) {
    let expiries = || async {
        projectors::lease::all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|lease| lease.holder == holder && names.contains(&lease.projection.as_str()))
            .map(|lease| (lease.projection, lease.expires_at))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = expiries().await;
    let mut renewals = std::collections::BTreeMap::new();
    while names
        .iter()
        .any(|name| renewals.get(*name).copied().unwrap_or(0) < times)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{holder} did not renew its leases on {names:?} {times} times within 30 s: {renewals:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = expiries().await;
        for name in names {
            assert!(
                now.contains_key(*name),
                "{holder} lost its lease on {name}: {:?}",
                projectors::lease::all(db).await.unwrap()
            );
        }
        for (name, expiry) in &now {
            if last.get(name).is_some_and(|before| expiry > before) {
                *renewals.entry(name.clone()).or_insert(0) += 1;
            }
        }
        last = now;
    }
}

async fn one_instance_runs_each_projection_and_another_takes_over_when_it_stops(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let (first_stop, second_stop) = (CancellationToken::new(), CancellationToken::new());
    let first = instance(&shop.app.store, &db, &first_stop);
    caught_up(&first, shop.app.head().await).await;
    let first_holder = sole_holder(&db).await;
    let second = instance(&shop.app.store, &db, &second_stop);
    shop.trade(1).await;
    caught_up(&first, shop.app.head().await).await;
    renewed(&db, &first_holder, &["catalog", "users", "orders"], 2).await;
    assert_eq!(sole_holder(&db).await, first_holder);
    assert!(
        second.progress.values().all(|progress| progress.borrow().is_none()),
        "the second instance waits while the first holds every lease"
    );
    first_stop.cancel();
    first.stopped().await;
    shop.trade(2).await;
    caught_up(&second, shop.app.head().await).await;
    assert_ne!(
        sole_holder(&db).await,
        first_holder,
        "the second instance took every lease"
    );
    second_stop.cancel();
    second.stopped().await;
    let rows_after_take_over = rows(&db).await;
    assert!(
        rows_after_take_over.iter().any(|row| row.contains("R2-0")),
        "round 2 is in the views"
    );
    assert_eq!(rows_after_take_over, rebuilt_rows(&shop.app.store, &db).await);
}

async fn a_lease_left_by_a_crashed_instance_expires(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    for projection in projectors::all() {
        let taken = projectors::lease::acquire(&db, projection.name(), "crashed", Duration::from_millis(1_500))
            .await
            .unwrap();
        assert!(taken);
    }
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let running = instance(&shop.app.store, &db, &shutdown);
    caught_up(&running, shop.app.head().await).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "it waited for the lease to expire: {:?}",
        started.elapsed()
    );
    assert_ne!(sole_holder(&db).await, "crashed");
    shutdown.cancel();
    running.stopped().await;
}

async fn an_instance_that_loses_its_lease_stops_until_it_gets_it_back(db: DatabaseConnection) {
    use sea_orm::{ActiveModelTrait, Set};
    use views::tables::projection_leases;

    let shop = Shop::start().await;
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let running = instance(&shop.app.store, &db, &shutdown);
    caught_up(&running, shop.app.head().await).await;
    let holder = sole_holder(&db).await;
    // Another instance took the orders lease (as after a long pause here).
    projection_leases::ActiveModel {
        projection: Set("orders".to_owned()),
        holder: Set("usurper".to_owned()),
        expires_at: Set(chrono::Utc::now() + chrono::Duration::seconds(60)),
    }
    .update(&db)
    .await
    .unwrap();
    // The instance renews all its leases on one clock: by the third renewal
    // of the others, it has tried to renew the orders lease and found it
    // taken.
    renewed(&db, &holder, &["catalog", "users"], 3).await;
    let mut orders = running.progress["orders"].clone();
    let before = *orders.borrow_and_update();
    shop.trade(1).await;
    caught_up_these(&running, shop.app.head().await, |name| name != "orders").await;
    let moved = tokio::time::timeout(Duration::from_millis(500), orders.changed()).await;
    assert!(moved.is_err(), "orders stopped here");
    assert_eq!(*orders.borrow(), before);
    projectors::lease::release(&db, "orders", "usurper").await.unwrap();
    caught_up(&running, shop.app.head().await).await;
    shutdown.cancel();
    running.stopped().await;
}

async fn a_replay_racing_the_first_batches_neither_deadlocks_nor_stops_a_projection(db: DatabaseConnection) {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let head = shop.app.head().await;
    // No checkpoint yet: the projectors' first batches and the rebuilds
    // start together.
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(
        Arc::clone(&shop.app.store),
        db.clone(),
        ProjectorOptions {
            batch_size: 3,
            ..Default::default()
        },
        shutdown.clone(),
    );
    for projection in projectors::all() {
        projectors::generations::rebuild::replay(&shop.app.store, &db, &projection, 3)
            .await
            .unwrap();
    }
    caught_up(&running, head).await;
    shutdown.cancel();
    running.stopped().await;
    assert_eq!(rows(&db).await, projected_rows(&shop.app.store, &db).await);
}

async fn a_replay_never_moves_a_checkpoint_back(db: DatabaseConnection) {
    let shop = Arc::new(Shop::start().await);
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let running = instance(&shop.app.store, &db, &shutdown);
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
        let before = views::checkpoint::load(&db, "orders").await.unwrap();
        projectors::generations::rebuild::replay(&shop.app.store, &db, &orders, 500)
            .await
            .unwrap();
        let after = views::checkpoint::load(&db, "orders").await.unwrap();
        assert!(after >= before, "the checkpoint went from {before:?} back to {after:?}");
        replays += 1;
    }
    trading.await.unwrap();
    caught_up(&running, shop.app.head().await).await;
    shutdown.cancel();
    running.stopped().await;
}

/// Writes the live tables in `transaction`.
fn live(transaction: &sea_orm::DatabaseTransaction) -> projectors::generations::Writer<'_> {
    projectors::generations::Writer {
        transaction,
        slot: projectors::generations::Slot::Live,
    }
}
