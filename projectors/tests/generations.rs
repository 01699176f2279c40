//! Blue/green generations against real databases, Postgres and SQLite: a
//! rebuild while orders flow and readers read the query API over HTTP is
//! promoted with no read error and no read of a half-built table, and the
//! live projector carries on from it; promotion and rollback (twice, back
//! to where it was) and dropping the previous generation; a verification
//! catches a corrupted row and promotion waits for its acceptance, also
//! on a later page of a table with a composite key; a rebuild stopped
//! midway resumes where it stopped; a new version of a
//! projection reports its differences and is promoted once accepted.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use projectors::generations::pace::Pace;
use projectors::generations::rebuild::{Promotion, Rebuilder};
use projectors::generations::{GenerationError, Slot, record, swap, verify};
use projectors::projection::Projection;
use projectors::runner::ProjectorOptions;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use serde_json::json;
use test_support::system::System;
use views::tables::products;

/// Each test on a fresh SQLite file and on a fresh Postgres database.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let (url, _folder) = test_support::sqlite_views();
                    super::$test(&url).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let url = test_support::postgres::fresh_database().await;
                    super::$test(&url).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_rebuild_while_orders_flow_and_readers_read_is_promoted_without_a_read_error,
    promotion_keeps_the_previous_generation_for_rollback,
    a_verification_catches_a_corrupted_row_and_promotion_waits_for_acceptance,
    a_verification_pages_through_a_composite_key_and_finds_a_row_on_a_later_page,
    a_rebuild_stopped_midway_resumes_where_it_stopped,
    a_new_version_reports_its_differences_and_is_promoted_once_accepted,
    a_paced_rebuild_pauses_after_each_batch_in_proportion_to_its_work,
);

/// The system with `products` products and a customer who ordered once.
async fn system_with_products(url: &str, products: usize) -> (System, Vec<String>, String) {
    let system = test_support::system::start(url).await;
    let admin = system.app.admin().await;
    let mut ids = Vec::new();
    for n in 0..products {
        ids.push(system.app.product(&admin, &format!("GEN-{n}"), "2.50", 1_000_000).await);
    }
    let (customer, _) = system.customer("gen-customer").await;
    let (status, body) = system.app.order(&customer, &[(ids[0].as_str(), 1)]).await;
    assert_eq!(status, 201, "{body}");
    (system, ids, customer)
}

fn rebuilder(system: &System, db: &DatabaseConnection, name: &str, batch_size: usize) -> Rebuilder {
    Rebuilder {
        store: Arc::clone(&system.app.store),
        db: db.clone(),
        projection: projectors::named(name).unwrap(),
        options: ProjectorOptions {
            batch_size,
            ..Default::default()
        },
        parked_by: "generations-test".to_owned(),
        pace: Pace::FULL,
    }
}

/// The live products, by SKU.
async fn live_products(db: &DatabaseConnection) -> Vec<products::Model> {
    products::Entity::find()
        .order_by_asc(products::Column::Sku)
        .all(db)
        .await
        .unwrap()
}

async fn views(url: &str) -> DatabaseConnection {
    projectors::database::connect_and_migrate(url, 4).await.unwrap()
}

/// Waits until the live generation of every projection has reached the
/// head of the log.
async fn live_caught_up(system: &System, db: &DatabaseConnection) {
    let head = system.app.head().await;
    test_support::wait_for("the live projections at the head", || async {
        let checkpoints = views::checkpoint::all(db).await.unwrap();
        let behind: Vec<_> = projectors::all()
            .iter()
            .filter(|p| !checkpoints.iter().any(|(name, at)| name == p.name() && *at >= head))
            .map(|p| p.name())
            .collect();
        if behind.is_empty() {
            Ok(())
        } else {
            Err(format!("{behind:?} behind {head}"))
        }
    })
    .await;
}

/// Every verification sets the process-wide gauge
/// `projection_verify_differences{projection,generation}`, and the tests of
/// this file run at once, twice each (on SQLite and on Postgres). The test
/// that reads the gauge back holds this lock from its verification to its
/// read; every other verification here takes it, so none can set the gauge
/// in between.
static VERIFYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds a scratch generation of `name` and compares it with the live
/// one: the live rows are what the log says when the report is clean.
async fn scratch_verify(rebuilder: &Rebuilder) -> verify::Report {
    let _verifying = VERIFYING.lock().await;
    rebuilder.begin().await.unwrap();
    let report = verify::verify(rebuilder, Slot::Next, Slot::Live).await.unwrap();
    swap::remove(rebuilder, Slot::Next).await.unwrap();
    report
}

async fn a_rebuild_while_orders_flow_and_readers_read_is_promoted_without_a_read_error(url: &str) {
    const PRODUCTS: usize = 5;
    let (system, ids, customer) = system_with_products(url, PRODUCTS).await;
    let system = Arc::new(system);
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let (system, stop, placed, ids) = (Arc::clone(&system), Arc::clone(&stop), Arc::clone(&placed), ids.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = system.app.order(&customer, &[(ids[n % PRODUCTS].as_str(), 1)]).await;
                assert_eq!(status, 201, "{body}");
                placed.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }
    });
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let (system, stop, ids) = (Arc::clone(&system), Arc::clone(&stop), ids.clone());
            tokio::spawn(async move {
                let mut reads = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = system.query("/products?limit=100", None).await;
                    assert_eq!(status, 200, "reader {reader}: {body}");
                    let listed = body["items"].as_array().unwrap().len();
                    assert_eq!(listed, PRODUCTS, "reader {reader} saw a half-built table: {body}");
                    let (status, body) = system
                        .query(&format!("/products/{}", ids[reads as usize % PRODUCTS]), None)
                        .await;
                    assert_eq!(status, 200, "reader {reader}: {body}");
                    reads += 2;
                }
                reads
            })
        })
        .collect();

    for name in ["catalog", "orders"] {
        let _verifying = VERIFYING.lock().await;
        let outcome = rebuilder(&system, &db, name, 20)
            .rebuild(Promotion::WhenClean)
            .await
            .unwrap();
        assert!(outcome.report.is_clean(), "{name}: {:#?}", outcome.report);
        assert!(outcome.promoted.is_some(), "{name} promoted");
    }
    // The live projectors go on from the promoted generations.
    let before = placed.load(Ordering::Relaxed);
    test_support::wait_for("orders placed after the promotions", || async {
        let now = placed.load(Ordering::Relaxed);
        if now >= before + 5 {
            Ok(())
        } else {
            Err(format!("{now} placed"))
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    assert!(reads > 0, "the readers read");
    live_caught_up(&system, &db).await;
    for name in ["catalog", "orders"] {
        let report = scratch_verify(&rebuilder(&system, &db, name, 500)).await;
        assert!(report.is_clean(), "{name} after the promotion: {report:#?}");
        assert!(rebuilder(&system, &db, name, 500).has(Slot::Previous).await.unwrap());
    }
}

async fn promotion_keeps_the_previous_generation_for_rollback(url: &str) {
    let (system, _, _) = system_with_products(url, 2).await;
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let catalog = rebuilder(&system, &db, "catalog", 3);
    let live_rows = live_products(&db).await;
    let outcome = {
        let _verifying = VERIFYING.lock().await;
        catalog.rebuild(Promotion::WhenClean).await.unwrap()
    };
    assert_eq!(outcome.promoted, Some(Some(system.app.head().await)));
    assert_eq!(live_products(&db).await, live_rows);
    let live = record::of(&db, "catalog", Slot::Live).await.unwrap().unwrap();
    assert!(live.promoted_at.is_some(), "{live:?}");
    assert_eq!(
        live.differences, None,
        "its verification was against the generation now previous"
    );
    let previous = record::of(&db, "catalog", Slot::Previous).await.unwrap().unwrap();
    assert_eq!(previous.version, 1, "the generation built before records were kept");
    assert!(!catalog.has(Slot::Next).await.unwrap());

    // Mark the previous generation: a rollback brings those very rows back.
    let marked = r#"UPDATE "products__prev" SET name = 'from the previous generation'"#;
    sea_orm::ConnectionTrait::execute_unprepared(&db, marked).await.unwrap();
    swap::roll_back(&catalog).await.unwrap();
    let names: Vec<String> = products::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.name)
        .collect();
    assert_eq!(names, ["from the previous generation"; 2]);
    swap::roll_back(&catalog).await.unwrap();
    assert_eq!(live_products(&db).await, live_rows, "rolled back twice: as promoted");

    // The live projector carries on in the generation now live.
    let admin = system.app.admin().await;
    system.app.product(&admin, "GEN-AFTER", "1.00", 1).await;
    live_caught_up(&system, &db).await;
    assert_eq!(live_products(&db).await.len(), 3);

    assert!(swap::remove(&catalog, Slot::Previous).await.unwrap());
    assert!(!catalog.has(Slot::Previous).await.unwrap());
    assert_eq!(views::checkpoint::load(&db, "catalog__prev").await.unwrap(), None);
    assert!(matches!(
        swap::roll_back(&catalog).await,
        Err(GenerationError::Missing {
            slot: Slot::Previous,
            ..
        })
    ));
    assert!(
        !swap::remove(&catalog, Slot::Previous).await.unwrap(),
        "nothing left to drop"
    );
}

async fn a_verification_catches_a_corrupted_row_and_promotion_waits_for_acceptance(url: &str) {
    let (system, ids, _) = system_with_products(url, 3).await;
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let catalog = rebuilder(&system, &db, "catalog", 500);
    assert!(scratch_verify(&catalog).await.is_clean(), "clean before the corruption");
    products::Entity::update_many()
        .col_expr(products::Column::Available, Expr::value(-7))
        .filter(products::Column::ProductId.eq(uuid::Uuid::parse_str(&ids[1]).unwrap()))
        .exec(&db)
        .await
        .unwrap();

    let verifying = VERIFYING.lock().await;
    let outcome = catalog.rebuild(Promotion::WhenClean).await.unwrap();
    assert_eq!(outcome.promoted, None, "not promoted: it differs");
    let report = outcome.report;
    assert_eq!(report.differences, 1, "{report:#?}");
    let difference = &report.first[0];
    assert_eq!(difference.table, "products");
    assert_eq!(difference.columns, ["available"]);
    assert_eq!(difference.key, json!([ids[1]]));
    assert_eq!(difference.compared_row.as_ref().unwrap()["available"], -7);
    let next = record::of(&db, "catalog", Slot::Next).await.unwrap().unwrap();
    assert_eq!(
        (next.differences, next.compared_with.as_deref()),
        (Some(1), Some("catalog"))
    );
    let metrics = api_common::metrics::handle().render();
    assert!(
        metrics.contains(r#"projection_verify_differences{projection="catalog",generation="next"} 1"#),
        "{metrics}"
    );
    drop(verifying);

    assert!(matches!(
        swap::promote(&catalog, false).await,
        Err(GenerationError::Differs { differences: 1, .. })
    ));
    swap::promote(&catalog, true).await.unwrap();
    let repaired = products::Entity::find_by_id(uuid::Uuid::parse_str(&ids[1]).unwrap())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repaired.available, 1_000_000, "the promoted rows are what the log says");
    assert!(scratch_verify(&catalog).await.is_clean());
}

/// Verification reads a table a page (2,000 rows) at a time, after the
/// last key of the page before: order lines, keyed by order and line
/// number, written straight into both generations (5 lines for each of
/// 1,000 orders, so several pages), one corrupted on the third page.
async fn a_verification_pages_through_a_composite_key_and_finds_a_row_on_a_later_page(url: &str) {
    let (system, _, _) = system_with_products(url, 1).await;
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let orders = rebuilder(&system, &db, "orders", 500);
    assert!(!orders.begin().await.unwrap());
    orders.catch_up(Slot::Next).await.unwrap();
    let order = |n: u128| uuid::Uuid::from_u128((n << 64) + 1);
    let product = uuid::Uuid::from_u128(7);
    for table in ["order_lines", "order_lines__next"] {
        for first in (0..1000_u128).step_by(100) {
            let lines: Vec<(uuid::Uuid, i32)> = (first..first + 100)
                .flat_map(|n| (1..=5).map(move |line| (order(n), line)))
                .collect();
            insert_lines(&db, table, product, &lines).await;
        }
    }
    // Keys sort by order, then line: row 4,503 is order 900's third line.
    let corrupt = Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "UPDATE order_lines SET quantity = 99 WHERE order_id = {} AND line_no = 3",
            placeholders(db.get_database_backend(), 1, 1)
        ),
        [sea_orm::Value::from(order(900))],
    );
    db.execute_raw(corrupt).await.unwrap();

    let report = {
        let _verifying = VERIFYING.lock().await;
        verify::verify(&orders, Slot::Next, Slot::Live).await.unwrap()
    };
    let lines = report.tables.iter().find(|t| t.table == "order_lines").unwrap();
    // The order the system placed has a line too.
    assert_eq!((lines.rows, lines.compared_rows), (5001, 5001), "{report:#?}");
    assert_eq!(report.differences, 1, "{report:#?}");
    let difference = &report.first[0];
    assert_eq!(difference.table, "order_lines");
    assert_eq!(difference.columns, ["quantity"]);
    assert_eq!(difference.key, json!([order(900).to_string(), 3]));
    swap::remove(&orders, Slot::Next).await.unwrap();
}

/// Writes `lines` of `product` (quantity: the line number) into `table`,
/// binding the ids as the projections do.
async fn insert_lines(db: &DatabaseConnection, table: &str, product: uuid::Uuid, lines: &[(uuid::Uuid, i32)]) {
    let backend = db.get_database_backend();
    let rows: Vec<String> = (0..lines.len())
        .map(|row| format!("({})", placeholders(backend, row * 4 + 1, 4)))
        .collect();
    let values = lines.iter().flat_map(|&(order, line)| {
        [
            sea_orm::Value::from(order),
            sea_orm::Value::from(line),
            sea_orm::Value::from(product),
            sea_orm::Value::from(line),
        ]
    });
    let sql = format!(
        "INSERT INTO {table} (order_id, line_no, product_id, quantity) VALUES {}",
        rows.join(", ")
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

/// `count` placeholders from the `first`th, as `backend` writes them.
fn placeholders(backend: DbBackend, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn a_rebuild_stopped_midway_resumes_where_it_stopped(url: &str) {
    let (system, ids, customer) = system_with_products(url, 2).await;
    for _ in 0..20 {
        let (status, body) = system.app.order(&customer, &[(ids[1].as_str(), 1)]).await;
        assert_eq!(status, 201, "{body}");
    }
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    // Slowed, so that the third of the way lasts many looks (one each 20 ms).
    let orders = Rebuilder {
        pace: Pace::busy_percent(20).unwrap(),
        ..rebuilder(&system, &db, "orders", 1)
    };
    assert!(!orders.begin().await.unwrap(), "a new rebuild");
    let building = tokio::spawn({
        let orders = orders.clone();
        async move { orders.catch_up(Slot::Next).await }
    });
    let head = system.app.head().await;
    // Stopped between two batches, a third of the way: each look at the
    // checkpoint is made holding the generation's lock (taken after the
    // batch under way commits), so the rebuild cannot move on between the
    // look and the stop, nor be cut off in the middle of a statement. (A
    // look without the lock let a rebuild of batches of one event finish
    // in the moment before the stop.)
    let (pause, stopped_at) = test_support::wait_for("the rebuild a third of the way", || async {
        let pause = projectors::database::begin_write(&db).await.unwrap();
        projectors::database::lock_projection(&pause, "orders__next")
            .await
            .unwrap();
        match views::checkpoint::load(&pause, "orders__next").await.unwrap() {
            Some(at) if at.commit * 3 >= head.commit => Ok((pause, at)),
            other => {
                pause.rollback().await.unwrap();
                Err(format!("at {other:?}"))
            }
        }
    })
    .await;
    building.abort();
    let _ = building.await;
    pause.rollback().await.unwrap();
    let done = record::of(&db, "orders", Slot::Next)
        .await
        .unwrap()
        .unwrap()
        .events_done;
    assert!(done > 0, "{done} events done");

    assert!(orders.begin().await.unwrap(), "the rebuild resumes");
    let resumed_from = views::checkpoint::load(&db, "orders__next").await.unwrap().unwrap();
    assert!(
        resumed_from >= stopped_at,
        "kept its checkpoint: {resumed_from} against {stopped_at}"
    );
    assert!(resumed_from < head, "not finished when stopped");
    let outcome = {
        let _verifying = VERIFYING.lock().await;
        orders.rebuild(Promotion::WhenClean).await.unwrap()
    };
    assert!(outcome.report.is_clean(), "{:#?}", outcome.report);
    assert_eq!(outcome.promoted, Some(Some(head)));
    // Counted in each batch's own transaction: exact across the stop.
    let live = record::of(&db, "orders", Slot::Live).await.unwrap().unwrap();
    let events = system.app.events().await.len() as i64;
    assert_eq!(live.events_done, events, "each event applied once");
}

/// The catalog with a changed `evolve` (names in capitals): version 2.
struct ShoutingCatalog;

#[async_trait::async_trait]
impl Projection for ShoutingCatalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn version(&self) -> u32 {
        2
    }

    fn tables(&self) -> &'static [projectors::projection::Table] {
        projectors::catalog::Catalog.tables()
    }

    async fn apply(
        &self,
        writer: &projectors::generations::Writer<'_>,
        events: &[event_store::RecordedEvent],
    ) -> Result<(), projectors::projection::ApplyError> {
        projectors::catalog::Catalog.apply(writer, events).await?;
        let table = writer.table("products");
        sea_orm::ConnectionTrait::execute_unprepared(
            writer.transaction,
            &format!(r#"UPDATE "{table}" SET name = upper(name)"#),
        )
        .await?;
        Ok(())
    }
}

async fn a_new_version_reports_its_differences_and_is_promoted_once_accepted(url: &str) {
    let (system, _, _) = system_with_products(url, 2).await;
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let version_2 = Rebuilder {
        projection: Arc::new(ShoutingCatalog),
        ..rebuilder(&system, &db, "catalog", 500)
    };
    let outcome = {
        let _verifying = VERIFYING.lock().await;
        version_2.rebuild(Promotion::WhenClean).await.unwrap()
    };
    assert_eq!(outcome.promoted, None, "it differs: the admin decides");
    assert_eq!(outcome.report.differences, 2, "{:#?}", outcome.report);
    assert!(
        outcome.report.first.iter().all(|d| d.columns == ["name"]),
        "{:#?}",
        outcome.report
    );
    let next = record::of(&db, "catalog", Slot::Next).await.unwrap().unwrap();
    assert_eq!(next.version, 2);
    let live = record::of(&db, "catalog", Slot::Live).await.unwrap();
    assert!(live.is_none(), "built before records were kept (version 1): {live:?}");

    swap::promote(&version_2, true).await.unwrap();
    let names: Vec<String> = live_products(&db).await.into_iter().map(|row| row.name).collect();
    assert_eq!(names, ["PRODUCT GEN-0", "PRODUCT GEN-1"]);
    let live = record::of(&db, "catalog", Slot::Live).await.unwrap().unwrap();
    let previous = record::of(&db, "catalog", Slot::Previous).await.unwrap().unwrap();
    assert_eq!((live.version, previous.version), (2, 1));
}

async fn a_paced_rebuild_pauses_after_each_batch_in_proportion_to_its_work(url: &str) {
    let (system, ids, customer) = system_with_products(url, 1).await;
    for _ in 0..10 {
        let (status, body) = system.app.order(&customer, &[(ids[0].as_str(), 1)]).await;
        assert_eq!(status, 201, "{body}");
    }
    let db = views(url).await;
    live_caught_up(&system, &db).await;
    let head = system.app.head().await;
    let build = |pace: Pace| {
        let orders = Rebuilder {
            pace,
            ..rebuilder(&system, &db, "orders", 1)
        };
        async move {
            orders.begin().await.unwrap();
            let started = std::time::Instant::now();
            let reached = orders.catch_up(Slot::Next).await.unwrap();
            let took = started.elapsed();
            swap::remove(&orders, Slot::Next).await.unwrap();
            (reached, took)
        }
    };
    // Paced first, on colder caches: its batches are no faster than the
    // full-pace run's, so its pauses (nine times its work) are what make
    // it slower.
    let (paced_reached, paced) = build(Pace::busy_percent(10).unwrap()).await;
    let (full_reached, full) = build(Pace::FULL).await;
    assert_eq!(paced_reached, Some(head));
    assert_eq!(full_reached, Some(head));
    assert!(
        paced >= full * 4,
        "busy 10% of the time took {paced:?}, at full pace {full:?}: it should take about ten times as long"
    );
}
