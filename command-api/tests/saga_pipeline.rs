//! The saga executes one batch's commands while it reads and steps the
//! next (`saga::pipeline`): an order whose reservation waits on a slow
//! product stream holds back no order on other products, and the commands
//! of later batches on that stream wait their turn behind it.
//!
//! Both tests need three batches in flight at once (`IN_FLIGHT`): the held
//! one and the two that follow it.

use std::time::Duration;

use domain::event::DomainEvent;
use domain::order::OrderStatus;
use domain::product::ProductEvent;
use reqwest::StatusCode;
use serde_json::Value;
use test_support::{App, FaultyStore, product_stream_name, wait_for};

/// An app on a faulty store whose saga saves its checkpoint too rarely to
/// matter here (a save waits until nothing is in flight) and whose orders
/// answer `202 Accepted` after 2 s without a decision.
async fn app() -> (App, std::sync::Arc<FaultyStore>) {
    let mut config = App::config();
    config.order_wait = Duration::from_secs(2);
    config.saga.checkpoint_every = Duration::from_secs(3600);
    App::start_faulty(config).await
}

/// Waits until `n` appends are held.
async fn wait_until_held(store: &FaultyStore, n: usize) {
    wait_for(&format!("{n} appends held"), || async move {
        match store.held_appends() {
            held if held == n => Ok(()),
            held => Err(format!("{held} held")),
        }
    })
    .await;
}

/// Waits until the order is confirmed.
async fn wait_until_confirmed(app: &App, order_id: &str) {
    wait_for(&format!("order {order_id} confirmed"), || async move {
        match app.order_status(order_id).await {
            OrderStatus::Confirmed => Ok(()),
            status => Err(format!("it is {status:?}")),
        }
    })
    .await;
}

/// The orders the product's stream answered, in its order.
async fn reservations(app: &App, product_id: &str) -> Vec<String> {
    let stream = product_stream_name(product_id);
    let events = app
        .store
        .read_stream(&stream, 0, 1000)
        .await
        .expect("the product stream reads");
    events
        .iter()
        .filter_map(|recorded| {
            match ProductEvent::decode(&recorded.event_type, recorded.metadata.schema_version, &recorded.data) {
                Ok(ProductEvent::StockReserved { order_id, .. }) => Some(order_id.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Holds the appends to `slow`, places alice's order of one `slow` and,
/// once its reservation is held in the store, runs `meanwhile`. Returns
/// alice's answer and what `meanwhile` returned.
async fn while_held<T>(
    app: &App,
    store: &FaultyStore,
    slow: &str,
    meanwhile: impl Future<Output = T>,
) -> ((StatusCode, Value), T) {
    let alice = app.customer("alice").await;
    store.hold_appends_to(product_stream_name(slow));
    let line = [(slow, 1)];
    let held = app.order(&alice, &line);
    let meanwhile = async {
        wait_until_held(store, 1).await;
        meanwhile.await
    };
    tokio::join!(held, meanwhile)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_waiting_on_a_held_product_holds_back_no_order_on_another() {
    let (app, store) = app().await;
    let admin = app.admin().await;
    let bob = app.customer("bob").await;
    let slow = app.product(&admin, "SLOW-1", "5.00", 10).await;
    let fast = app.product(&admin, "FAST-1", "5.00", 10).await;

    let line = [(fast.as_str(), 1)];
    let other = app.order(&bob, &line);
    let ((waiting_status, waiting), (other_status, other)) = while_held(&app, &store, &slow, other).await;

    assert_eq!(
        other_status,
        StatusCode::CREATED,
        "confirmed while the first order's reservation was held: {other}"
    );
    assert_eq!(waiting_status, StatusCode::ACCEPTED, "{waiting}");
    store.release_held();
    wait_until_confirmed(&app, waiting["orderId"].as_str().unwrap()).await;
    app.assert_stock_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_reservation_on_a_held_product_waits_its_turn_behind_the_earlier() {
    let (app, store) = app().await;
    let admin = app.admin().await;
    let bob = app.customer("bob").await;
    let carol = app.customer("carol").await;
    let slow = app.product(&admin, "SLOW-1", "5.00", 10).await;
    let fast = app.product(&admin, "FAST-1", "5.00", 10).await;

    let later = async {
        let second = app.order(&bob, &[(&slow, 2)]).await;
        // Placed after the second, so reserved only once the saga has read
        // the second and handed out its reservation: it waits behind the
        // first's turn, not in the store.
        let third = app.order(&carol, &[(&fast, 1)]).await;
        wait_for("the third order's reservation", || async {
            match reservations(&app, &fast).await.len() {
                1 => Ok(()),
                n => Err(format!("{n} reservations")),
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        (second, third, store.held_appends())
    };
    let ((first_status, first), ((second_status, second), (_, third), held)) =
        while_held(&app, &store, &slow, later).await;

    assert_eq!(first_status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(second_status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(held, 1, "the second reservation waits for its turn, not in the store");
    store.release_held();
    let ids = [first["orderId"].as_str().unwrap(), second["orderId"].as_str().unwrap()];
    for id in ids.into_iter().chain([third["orderId"].as_str().unwrap()]) {
        wait_until_confirmed(&app, id).await;
    }
    assert_eq!(
        reservations(&app, &slow).await,
        ids,
        "the product answers the orders in the order they were placed, once each"
    );
    assert_eq!(app.available(&slow).await, 7);
    app.assert_stock_balances().await;
}
