//! Fail-over between `projectors` processes on one Postgres database (#11):
//! when the instance running the projections is killed with SIGKILL, the
//! other runs them within 2 s, well inside the query API's `READ_WAIT_MS`
//! (2 s by default), so reads asking for a new write's position do not get
//! 503 for a lease period. On SQLite the lease still decides, for the
//! period `PROJECTORS_LEASE_MS` sets.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use command_api::auth::tokens::SigningKey;
use domain::event::DomainEvent;
use domain::ids::ProductId;
use domain::money::Price;
use domain::product::{ProductEvent, ProductName, Sku};
use domain::quantity::StockLevel;
use event_store::{EventStore, ExpectedRevision, Position};
use sea_orm::{DatabaseConnection, EntityTrait};
use test_support::binary::{self, free_address};
use test_support::wait_for;

/// What the test allows between the kill and the new write's projection.
const FAIL_OVER: Duration = Duration::from_secs(2);

/// A `projectors` process on the shared log in `folder` and the views at
/// `views_url`, with `env` added, once its admin API answers (its
/// projections start right after).
async fn projectors(folder: &tempfile::TempDir, views_url: &str, env: &[(&str, &str)]) -> binary::Running {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let address = free_address();
    let listen = address.to_string();
    let public_key = SigningKey::generate().unwrap().public_key_pem();
    let mut all = vec![
        ("EVENT_STORE_URL", store_url.as_str()),
        ("VIEWS_DATABASE_URL", views_url),
        ("VIEWS_POOL_SIZE", "2"),
        ("PROJECTORS_ADMIN_ADDR", listen.as_str()),
        ("JWT_PUBLIC_KEY", public_key.as_str()),
    ];
    all.extend_from_slice(env);
    let mut running = binary::start(env!("CARGO_BIN_EXE_projectors"), &[], &all);
    running.wait_until_live(address).await;
    running
}

/// Appends the creation of a product `sku`; its position.
async fn create_product(store: &Arc<dyn EventStore>, sku: &str) -> Position {
    let sku = Sku::parse(sku).unwrap();
    let created = ProductEvent::Created {
        product_id: ProductId::for_sku(&sku),
        sku: sku.clone(),
        name: ProductName::parse("Lamp").unwrap(),
        price: Price::from_minor_units(1_250).unwrap(),
        available: StockLevel::parse_field("stock", 5).unwrap(),
        at: chrono::Utc::now(),
    }
    .encode()
    .unwrap();
    let stream = test_support::product_stream_name(&ProductId::for_sku(&sku).to_string());
    let event = test_support::new_event(&created.event_type, created.schema_version, created.data);
    store
        .append(&stream, ExpectedRevision::NoStream, vec![event])
        .await
        .unwrap()
        .position
}

/// Whether every projection's lease row names the process `pid` (holders
/// are `<pid>-<random>`).
async fn all_held_by(db: &DatabaseConnection, pid: u32) -> Result<(), String> {
    let leases = projectors::lease::all(db).await.map_err(|e| e.to_string())?;
    let prefix = format!("{pid}-");
    if leases.len() == projectors::all().len() && leases.iter().all(|lease| lease.holder.starts_with(&prefix)) {
        Ok(())
    } else {
        Err(format!("{leases:?}"))
    }
}

/// Whether every projection's checkpoint has reached `position`.
async fn projected(db: &DatabaseConnection, position: Position) -> bool {
    let checkpoints = views::checkpoint::all(db).await.unwrap();
    projectors::all().iter().all(|projection| {
        checkpoints
            .iter()
            .any(|(name, at)| name == projection.name() && *at >= position)
    })
}

/// Two `projectors` processes (`env` added to their defaults) on the views
/// at `views_url`: the first takes every projection, the second waits; the
/// first is killed with SIGKILL and a product created. How long after the
/// kill the survivor had projected it, having taken every projection.
async fn fail_over(views_url: &str, env: &[(&str, &str)]) -> Duration {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let db = views::connect(views_url, 2).await.unwrap();
    create_product(&store, "LAMP-0").await;

    let holder = projectors(&folder, views_url, env).await;
    let holder_pid = holder.id();
    wait_for("the first instance taking every projection", || {
        all_held_by(&db, holder_pid)
    })
    .await;
    let survivor = projectors(&folder, views_url, env).await;

    holder.kill();
    let killed = Instant::now();
    let position = create_product(&store, "LAMP-1").await;
    wait_for("the survivor projecting the write made after the kill", || async {
        if projected(&db, position).await {
            Ok(())
        } else {
            Err(format!("checkpoints {:?}", views::checkpoint::all(&db).await))
        }
    })
    .await;
    let fail_over = killed.elapsed();
    let lamp = ProductId::for_sku(&Sku::parse("LAMP-1").unwrap()).as_uuid();
    let product = views::tables::products::Entity::find_by_id(lamp)
        .one(&db)
        .await
        .unwrap();
    assert!(product.is_some(), "the survivor wrote the new product's row");
    all_held_by(&db, survivor.id()).await.unwrap();
    fail_over
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_killed_holder_s_projections_run_elsewhere_within_two_seconds() {
    let views_url = test_support::postgres::fresh_database().await;
    let fail_over = fail_over(&views_url, &[]).await;
    // BENCHMARKS.md, "Projector fail-over (#11)": run with --nocapture.
    println!("{}", test_support::bench::machine());
    println!("fail-over on Postgres: the write after the kill was projected {fail_over:?} after it");
    assert!(
        fail_over < FAIL_OVER,
        "the write made after the kill was projected {fail_over:?} after it, not within {FAIL_OVER:?}"
    );
}

/// On SQLite the lease decides: the survivor waits for it to lapse, which
/// `PROJECTORS_LEASE_MS` sets (1.5 s here against 10 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_killed_holder_s_lease_lapses_after_projectors_lease_ms() {
    let (views_url, _folder) = test_support::sqlite_views();
    let fail_over = fail_over(&views_url, &[("PROJECTORS_LEASE_MS", "1500")]).await;
    println!("fail-over on SQLite with a 1.5 s lease: {fail_over:?}");
    // Renewed every 0.5 s, the lease lapses 1 to 1.5 s after the kill; the
    // survivor tries every 0.5 s and the log is polled every 0.25 s.
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&fail_over),
        "taken over {fail_over:?} after the kill"
    );
}
