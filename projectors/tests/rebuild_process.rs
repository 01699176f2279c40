//! `projectors rebuild` as a process: killed with SIGKILL in the middle of
//! building the next generation, started again it resumes from the
//! generation's checkpoint instead of starting over, and promotes rows
//! that are what the log says. Views on Postgres (a fresh database) and on
//! SQLite.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use domain::event::DomainEvent;
use domain::ids::ProductId;
use domain::money::Price;
use domain::product::{ProductEvent, ProductName, Sku};
use domain::quantity::StockLevel;
use event_store::{EventStore, ExpectedRevision, Position};
use projectors::generations::{Slot, record};
use sea_orm::{DatabaseConnection, EntityTrait};
use test_support::binary;
use views::tables::products;

/// Restocks appended to the one product: enough that a rebuild in
/// batches of one takes seconds.
const RESTOCKS: u32 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_midway_resumes_on_postgres() {
    let url = test_support::postgres::fresh_database().await;
    a_rebuild_killed_midway_resumes(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_midway_resumes_on_sqlite() {
    let (url, _folder) = test_support::sqlite_views();
    a_rebuild_killed_midway_resumes(&url).await;
}

async fn a_rebuild_killed_midway_resumes(views_url: &str) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let head = restocked_product(&store).await;
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let env = [
        ("EVENT_STORE_URL", store_url.as_str()),
        ("VIEWS_DATABASE_URL", views_url),
        ("PROJECTOR_BATCH_SIZE", "1"),
        // Flat out: resuming is what is tested, and at the default pace
        // (busy 35% of the time) the 3,000 batches take three times as
        // long, past what a binary is given to finish.
        ("REBUILD_BUSY_PERCENT", "100"),
    ];
    let db = projectors::database::connect_and_migrate(views_url, 2).await.unwrap();

    let rebuild = binary::start(env!("CARGO_BIN_EXE_projectors"), &["rebuild", "catalog"], &env);
    let stopped_at = test_support::wait_for("the rebuild a tenth of the way", || async {
        match views::checkpoint::load(&db, "catalog__next").await.unwrap() {
            Some(at) if at.commit * 10 >= head.commit => Ok(at),
            other => Err(format!("at {other:?}")),
        }
    })
    .await;
    rebuild.kill();
    let done = record::of(&db, "catalog", Slot::Next)
        .await
        .unwrap()
        .unwrap()
        .events_done;
    let kept = views::checkpoint::load(&db, "catalog__next").await.unwrap().unwrap();
    assert!(kept >= stopped_at && kept < head, "killed midway: at {kept} of {head}");

    let again = binary::start(env!("CARGO_BIN_EXE_projectors"), &["rebuild", "catalog"], &env).exit();
    assert!(again.success, "{}", again.stderr);
    assert!(
        again.stdout.contains("catalog: resuming the rebuild under way"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("0 rows differ"), "{}", again.stdout);
    assert_eq!(views::checkpoint::load(&db, "catalog").await.unwrap(), Some(head));
    let row = only_product(&db).await;
    assert_eq!(row.available, i64::from(5 + RESTOCKS), "every restock applied once");
    let status = binary::start(env!("CARGO_BIN_EXE_projectors"), &["status"], &env).exit();
    assert!(status.success, "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains(&format!("catalog: {head}\n  previous generation (version 1): {head}")),
        "{}",
        status.stdout
    );
    // The daemons' metrics show the verification the command ran.
    let recorder = api_common::metrics::handle();
    projectors::generations::metrics::refresh(&db).await.unwrap();
    let metrics = recorder.render();
    assert!(
        metrics.contains(r#"projection_verify_differences{projection="catalog",generation="live"} 0"#),
        "{metrics}"
    );
    let live = record::of(&db, "catalog", Slot::Live).await.unwrap().unwrap();
    assert!(live.events_done > done, "went on from {done} events");
    let events = i64::from(RESTOCKS) + 1;
    assert_eq!(live.events_done, events, "resumed, not started over");
}

/// Creates a product with 5 in stock and restocks it [`RESTOCKS`] times,
/// one at a time; the head of the log.
async fn restocked_product(store: &Arc<dyn EventStore>) -> Position {
    let sku = Sku::parse("RESUME-1").unwrap();
    let product_id = ProductId::for_sku(&sku);
    let stream = test_support::product_stream_name(&product_id.to_string());
    let at = chrono::Utc::now();
    let mut events = vec![ProductEvent::Created {
        product_id,
        sku,
        name: ProductName::parse("Lamp").unwrap(),
        price: Price::from_minor_units(1_250).unwrap(),
        available: StockLevel::parse_field("stock", 5).unwrap(),
        at,
    }];
    events.extend((1..=RESTOCKS).map(|n| ProductEvent::Restocked {
        product_id,
        quantity: 1,
        available: StockLevel::parse_field("stock", i64::from(5 + n)).unwrap(),
        at,
    }));
    let mut head = None;
    for chunk in events.chunks(500) {
        let new = chunk
            .iter()
            .map(|event| {
                let encoded = event.encode().unwrap();
                test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data)
            })
            .collect();
        let outcome = store.append(&stream, ExpectedRevision::Any, new).await.unwrap();
        head = Some(outcome.position);
    }
    head.unwrap()
}

async fn only_product(db: &DatabaseConnection) -> products::Model {
    let mut rows = products::Entity::find().all(db).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}
