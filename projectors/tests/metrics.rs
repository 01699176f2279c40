//! Projector metrics are recorded from the first batch, in a process that
//! has served no HTTP request (nothing else installs the recorder here).

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::event::DomainEvent;
use domain::ids::ProductId;
use domain::money::Price;
use domain::product::{ProductEvent, ProductName, Sku};
use domain::quantity::StockLevel;
use event_store::ExpectedRevision;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_metrics_count_from_the_first_batch() {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let sku = Sku::parse("LAMP-1").unwrap();
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
    let appended = store
        .append(&stream, ExpectedRevision::NoStream, vec![event])
        .await
        .unwrap();
    let (url, _views) = test_support::sqlite_views();
    let db = projectors::database::connect_and_migrate(&url, 4).await.unwrap();
    let shutdown = CancellationToken::new();
    let running = projectors::supervisor::start(Arc::clone(&store), db, Default::default(), shutdown.clone());
    let mut catalog = running.progress["catalog"].clone();
    tokio::time::timeout(
        Duration::from_secs(30),
        catalog.wait_for(|p| *p == Some(appended.position)),
    )
    .await
    .unwrap()
    .unwrap();
    shutdown.cancel();
    running.stopped().await;
    let text = api_common::metrics::handle().render();
    assert!(
        text.lines()
            .any(|line| line == r#"projector_events_total{projection="catalog"} 1"#),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with(r#"projector_checkpoint_commit_position{projection="catalog"}"#)),
        "{text}"
    );
}
