//! The order saga across crashes and with two runners at once. A crash is a
//! store that fails the saga's write to a chosen stream
//! ([`FaultyStore::fail_appends_to`]): the saga stops there with an error
//! and saves nothing, as a killed process would.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command_api::aggregates::Aggregates;
use command_api::saga::{CHECKPOINT_STREAM, OrderSaga, SagaError, SagaOptions};
use domain::event::DomainEvent;
use domain::order::OrderStatus;
use domain::product::ProductEvent;
use event_store::{EventStore, Position, StreamName};
use reqwest::StatusCode;
use serde_json::json;
use test_support::{App, FaultyStore, PATIENCE, order_stream_name, product_stream_name, wait_for};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A saga whose every read and write goes through `store`, saving its
/// checkpoint after every batch.
fn saga(store: Arc<dyn EventStore>) -> OrderSaga {
    OrderSaga::new(
        Arc::clone(&store),
        Arc::new(Aggregates::new(Arc::clone(&store))),
        Arc::new(Aggregates::new(store)),
        SagaOptions {
            checkpoint_every: Duration::ZERO,
            ..SagaOptions::default()
        },
    )
}

/// A saga running until the token is cancelled.
fn start_saga(store: Arc<dyn EventStore>) -> (CancellationToken, JoinHandle<Result<(), SagaError>>) {
    let shutdown = CancellationToken::new();
    let runner = saga(store);
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { runner.run(shutdown).await })
    };
    (shutdown, running)
}

/// Runs a saga that dies before its first write to `stream` and waits until
/// it has died there.
async fn run_until_it_dies_before_appending_to(app: &App, stream: StreamName) {
    let store = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    store.fail_appends_to(stream);
    let stopped = tokio::time::timeout(PATIENCE, saga(store.clone()).run(CancellationToken::new()))
        .await
        .expect("the saga reaches the write it dies before");
    assert!(matches!(stopped, Err(SagaError::Command(_))), "{stopped:?}");
    assert!(store.failed_appends() > 0);
}

/// An app whose own saga does not run, so tests drive sagas by hand.
async fn app_without_saga() -> App {
    let mut config = App::config();
    config.run_saga = false;
    config.order_wait = Duration::from_millis(100);
    App::start_with(config).await
}

/// A customer's order of 2 mugs (10 in stock) and `quantity` of another
/// product, `(sku, price, stock)`, left pending: no saga runs in `app`.
/// The mug's id, the other product's and the order's.
async fn pending_order(app: &App, (sku, price, stock): (&str, &str, i64), quantity: i64) -> (String, String, String) {
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let other = app.product(&admin, sku, price, stock).await;
    let (status, pending) = app.order(&buyer, &[(&mug, 2), (&other, quantity)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    (mug, other, pending["orderId"].as_str().unwrap().to_owned())
}

/// A product's answer to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Answer {
    Reserved,
    Refused,
    Released,
}

/// How often each product gave each kind of answer to each order, keyed by
/// (answer, product id, order id).
async fn answers(app: &App) -> HashMap<(Answer, String, String), usize> {
    let mut counts = HashMap::new();
    for recorded in app.events().await {
        if ProductEvent::id_in_stream(&recorded.stream).is_none() {
            continue;
        }
        let event = ProductEvent::decode(&recorded.event_type, recorded.metadata.schema_version, &recorded.data);
        let (answer, product_id, order_id) = match event.unwrap() {
            ProductEvent::StockReserved {
                product_id, order_id, ..
            } => (Answer::Reserved, product_id, order_id),
            ProductEvent::StockReservationRefused {
                product_id, order_id, ..
            } => (Answer::Refused, product_id, order_id),
            ProductEvent::StockReleased {
                product_id, order_id, ..
            } => (Answer::Released, product_id, order_id),
            _ => continue,
        };
        *counts
            .entry((answer, product_id.to_string(), order_id.to_string()))
            .or_default() += 1;
    }
    counts
}

fn assert_answered_once(answers: &HashMap<(Answer, String, String), usize>) {
    assert!(
        answers.values().all(|n| *n == 1),
        "a product answers an order once: {answers:?}"
    );
}

/// Waits for a decision on the order: confirmed or rejected.
async fn wait_until_decided(app: &App, order_id: &str) -> OrderStatus {
    wait_for(&format!("a decision on order {order_id}"), || async move {
        match app.order_status(order_id).await {
            OrderStatus::Pending => Err("it is pending".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    app.order_status(order_id).await
}

/// A position the saga's last saved checkpoint records: `after`, where it
/// resumes, or `handled`, up to where it executed every command.
async fn saved_checkpoint(app: &App, field: &str) -> Option<Position> {
    let stream = StreamName::new(CHECKPOINT_STREAM).unwrap();
    let checkpoint = app.store.read_last(&stream).await.unwrap()?;
    let data: serde_json::Value = serde_json::from_slice(&checkpoint.data).unwrap();
    data[field].as_str().map(|position| position.parse().unwrap())
}

/// Waits until the saga's checkpoint records as handled the last event of
/// the order's stream: the saga has read its own confirmation back and
/// executed what follows it. The order, confirmed and unpaid, still pins
/// where a restart resumes (before it), and the restart reads it again
/// without executing anything.
async fn wait_for_checkpoint_past(app: &App, order_id: &str) -> Position {
    let order = order_stream_name(order_id);
    let last = app.store.read_last(&order).await.unwrap().unwrap().position;
    wait_for(
        &format!("the saga's checkpoint passing order {order_id}'s last event at {last}"),
        || async move {
            match saved_checkpoint(app, "handled").await {
                Some(handled) if handled >= last => Ok(()),
                other => Err(format!("it is at {other:?}")),
            }
        },
    )
    .await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_crashed_between_two_reservations_confirms_after_restart() {
    let app = app_without_saga().await;
    let (mug, pen, order_id) = pending_order(&app, ("PEN-1", "2.00", 10), 3).await;

    // Dies before reserving the pen: between the order's two reservations.
    run_until_it_dies_before_appending_to(&app, product_stream_name(&pen)).await;
    let reserved: Vec<_> = answers(&app).await.into_keys().collect();
    assert_eq!(
        reserved,
        [(Answer::Reserved, mug.clone(), order_id.clone())],
        "the crash came between the two reservations"
    );
    assert_eq!(app.order_status(&order_id).await, OrderStatus::Pending);

    // Restarted, it replays the order and reserves the pen, saves its
    // checkpoint after that batch, and dies before confirming. The
    // checkpoint must still lie before the order, which is unfinished.
    run_until_it_dies_before_appending_to(&app, order_stream_name(&order_id)).await;
    assert_eq!(app.available(&pen).await, 7);
    assert_eq!(app.order_status(&order_id).await, OrderStatus::Pending);

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    app.wait_for_status(&order_id, OrderStatus::Confirmed).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(app.available(&mug).await, 8);
    assert_eq!(app.available(&pen).await, 7);
    assert_answered_once(&answers(&app).await);
    app.assert_stock_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_crashed_mid_order_rejects_after_restart_and_releases_what_it_held() {
    let app = app_without_saga().await;
    let (mug, rare, order_id) = pending_order(&app, ("RARE-1", "99.00", 1), 5).await;

    run_until_it_dies_before_appending_to(&app, product_stream_name(&rare)).await;
    assert_eq!(
        app.available(&mug).await,
        8,
        "the first line was reserved before the crash"
    );
    // Restarted, it hears the refusal, saves its checkpoint and dies before
    // rejecting: the order still holds the mug.
    run_until_it_dies_before_appending_to(&app, order_stream_name(&order_id)).await;
    assert_eq!(app.order_status(&order_id).await, OrderStatus::Pending);
    assert_eq!(app.available(&mug).await, 8);

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    app.wait_for_status(&order_id, OrderStatus::Rejected).await;
    app.assert_stock_balances().await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(app.available(&mug).await, 10, "released after the rejection");
    assert_eq!(app.available(&rare).await, 1);
    assert_answered_once(&answers(&app).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_saga_resumes_from_its_checkpoint_not_from_the_start() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let carol = app.customer("carol").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let (_, first) = app.order(&carol, &[(&mug, 1)]).await;
    let first_id = first["orderId"].as_str().unwrap().to_owned();

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    app.wait_for_status(&first_id, OrderStatus::Confirmed).await;
    let first_done = wait_for_checkpoint_past(&app, &first_id).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let checkpoint = saved_checkpoint(&app, "after").await;
    let handled = saved_checkpoint(&app, "handled").await;

    let (_, second) = app.order(&carol, &[(&mug, 2)]).await;
    let second_id = second["orderId"].as_str().unwrap().to_owned();
    let store = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    let (shutdown, running) = start_saga(store.clone());
    app.wait_for_status(&second_id, OrderStatus::Confirmed).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(
        store.subscriptions_started(),
        [checkpoint],
        "it followed the log from its checkpoint only"
    );
    assert!(
        checkpoint.is_some_and(|after| after < first_done),
        "the first order, unpaid, pins where it resumes"
    );
    assert!(
        handled.is_some_and(|handled| handled >= first_done),
        "past the first order"
    );
    assert_eq!(app.available(&mug).await, 7);
}

/// A buyer places three orders, waits for their decisions and cancels the
/// first that was confirmed. Returns its orders, and the one it cancelled.
async fn buy_and_cancel(app: &App, n: usize, products: &[String]) -> (Vec<String>, Option<String>) {
    let token = app.customer(&format!("buyer{n}")).await;
    let mut orders = Vec::new();
    for k in 0..3 {
        let items = [
            (products[(n + k) % 3].as_str(), 3),
            (products[(n + k + 1) % 3].as_str(), 2),
        ];
        let (_, body) = app.order(&token, &items).await;
        orders.push(body["orderId"].as_str().unwrap().to_owned());
    }
    for order_id in &orders {
        if wait_until_decided(app, order_id).await == OrderStatus::Confirmed {
            let path = format!("/orders/{order_id}/cancel");
            let (status, body) = app
                .post(&path, Some(&token), &json!({"reason": "changed my mind"}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let cancelled = order_id.clone();
            return (orders, Some(cancelled));
        }
    }
    (orders, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sagas_at_once_apply_everything_once() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let mut products = Vec::new();
    for n in 0..3 {
        products.push(app.product(&admin, &format!("SKU-{n}"), "5.00", 20).await);
    }
    let runners: Vec<_> = (0..2).map(|_| start_saga(Arc::clone(&app.store))).collect();
    // The buyers take turns on this task (the sagas run on their own).
    let buyers = (0..8).map(|n| buy_and_cancel(&app, n, &products));
    let (mut orders, mut cancelled) = (Vec::new(), Vec::new());
    for (placed, cancel) in futures::future::join_all(buyers).await {
        orders.extend(placed);
        cancelled.extend(cancel);
    }
    assert!(!cancelled.is_empty(), "some order was confirmed and cancelled");
    // Cancelled orders hold nothing, so the stock balances only once every
    // cancellation's stock is released.
    app.assert_stock_balances().await;
    for (shutdown, running) in runners {
        shutdown.cancel();
        running.await.unwrap().unwrap();
    }

    let answers = answers(&app).await;
    assert_answered_once(&answers);
    for order_id in &cancelled {
        let reserved = answers
            .keys()
            .filter(|(answer, _, order)| *answer == Answer::Reserved && order == order_id);
        for (_, product_id, _) in reserved {
            let release = (Answer::Released, product_id.clone(), order_id.clone());
            assert!(
                answers.contains_key(&release),
                "no release of {product_id} for cancelled {order_id}"
            );
        }
    }
    for order_id in &orders {
        let status = app.order_status(order_id).await;
        let ended = [OrderStatus::Confirmed, OrderStatus::Rejected, OrderStatus::Cancelled];
        assert!(ended.contains(&status), "{order_id} is {status:?}");
    }
}
