//! A reservation that arrives after its order ended is released, whatever
//! the saga runner remembers of the order (issue #11, point 1).
//!
//! A runner keeps saga state only for orders still being reserved. One that
//! restarts from a checkpoint older than a rejection replays the order and
//! asks its products again; a product that was missing then and exists now
//! reserves, after the rejection is in the log. The runner that rejected
//! has forgotten the order, and so has the replaying one by the time the
//! reservation comes back: the order's own stream must decide.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use command_api::aggregates::Aggregates;
use command_api::saga::{CHECKPOINT_STREAM, OrderSaga, SagaError, SagaOptions};
use domain::event::DomainEvent;
use domain::ids::ProductId;
use domain::order::OrderStatus;
use domain::product::{ProductEvent, Sku};
use event_store::{EventStore, StreamName};
use reqwest::StatusCode;
use test_support::{App, wait_for};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A saga over `store` saving its checkpoint every `checkpoint_every`.
fn saga(store: Arc<dyn EventStore>, checkpoint_every: Duration) -> OrderSaga {
    OrderSaga::new(
        Arc::clone(&store),
        Arc::new(Aggregates::new(Arc::clone(&store))),
        Arc::new(Aggregates::new(store)),
        SagaOptions {
            checkpoint_every,
            ..SagaOptions::default()
        },
    )
}

fn start_saga(
    store: Arc<dyn EventStore>,
    checkpoint_every: Duration,
) -> (CancellationToken, JoinHandle<Result<(), SagaError>>) {
    let shutdown = CancellationToken::new();
    let runner = saga(store, checkpoint_every);
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { runner.run(shutdown).await })
    };
    (shutdown, running)
}

/// An app whose own saga does not run, so the test drives sagas by hand.
async fn app_without_saga() -> App {
    let mut config = App::config();
    config.run_saga = false;
    config.order_wait = Duration::from_millis(100);
    App::start_with(config).await
}

/// What a product answered the order `order_id`, in log order: `Reserved`,
/// `Refused` or `Released` for each of its answers.
async fn answers_of(app: &App, product_id: &str, order_id: &str) -> Vec<&'static str> {
    let mut answers = Vec::new();
    for recorded in app.events().await {
        if ProductEvent::id_in_stream(&recorded.stream).is_none() {
            continue;
        }
        let event = ProductEvent::decode(&recorded.event_type, recorded.metadata.schema_version, &recorded.data);
        let (answer, product, order) = match event.unwrap() {
            ProductEvent::StockReserved {
                product_id, order_id, ..
            } => ("Reserved", product_id, order_id),
            ProductEvent::StockReservationRefused {
                product_id, order_id, ..
            } => ("Refused", product_id, order_id),
            ProductEvent::StockReleased {
                product_id, order_id, ..
            } => ("Released", product_id, order_id),
            _ => continue,
        };
        if product.to_string() == product_id && order.to_string() == order_id {
            answers.push(answer);
        }
    }
    answers
}

async fn wait_for_answers(app: &App, product_id: &str, order_id: &str, wanted: &[&str]) {
    let what = format!("{product_id}'s answers to {order_id} becoming {wanted:?}");
    wait_for(&what, || async move {
        match answers_of(app, product_id, order_id).await {
            answers if answers == wanted => Ok(()),
            answers => Err(format!("they are {answers:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_after_a_rejection_is_released_by_a_saga_restarted_from_an_older_checkpoint() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    // A product that does not exist yet; its id is its SKU's.
    let late = ProductId::for_sku(&Sku::parse("LATE-1").unwrap()).to_string();
    let (status, pending) = app.order(&buyer, &[(&mug, 2), (&late, 1)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let order_id = pending["orderId"].as_str().unwrap().to_owned();

    // The first runner rejects the order (no such product) and releases the
    // mug, then dies before its checkpoint is due: nothing was saved.
    let (_, first) = start_saga(Arc::clone(&app.store), Duration::from_secs(3600));
    wait_for_answers(&app, &mug, &order_id, &["Reserved", "Released"]).await;
    assert_eq!(app.order_status(&order_id).await, OrderStatus::Rejected);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let checkpoint = StreamName::new(CHECKPOINT_STREAM).unwrap();
    assert!(
        app.store.read_last(&checkpoint).await.unwrap().is_none(),
        "the first runner saved no checkpoint"
    );

    // The missing product is created; a runner restarted from the older
    // checkpoint replays the order, and the product now reserves.
    assert_eq!(app.product(&admin, "LATE-1", "3.00", 5).await, late);
    let (shutdown, running) = start_saga(Arc::clone(&app.store), Duration::ZERO);
    wait_for(&format!("the replayed order reserving {late}"), || async {
        let answers = answers_of(&app, &late, &order_id).await;
        if answers.first() == Some(&"Reserved") {
            Ok(())
        } else {
            Err(format!("its answers are {answers:?}"))
        }
    })
    .await;

    // The order stays rejected, so that reservation must be released.
    wait_for_answers(&app, &late, &order_id, &["Reserved", "Released"]).await;
    assert_eq!(app.order_status(&order_id).await, OrderStatus::Rejected);
    assert_eq!(app.available(&late).await, 5);
    assert_eq!(app.available(&mug).await, 10);
    app.assert_stock_balances().await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        answers_of(&app, &mug, &order_id).await,
        ["Reserved", "Released"],
        "the mug answered once"
    );
}
