//! The saga's quarantine (issue #11, point 2): a poison event holds back
//! only the order it concerns while every other order is decided, the
//! held-back order goes on once the event is skipped, an order stream the
//! saga cannot read parks its reservation instead of stalling, two sagas
//! park an event once, and an outage parks nothing.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use command_api::aggregates::Aggregates;
use command_api::saga::{self, OrderSaga, PARKED_STREAM, SagaOptions};
use domain::order::OrderStatus;
use event_store::{EventStore, ExpectedRevision, Position, StreamName};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{App, FaultyStore, new_event, order_stream_name, product_stream_name, wait_for};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const ATTEMPTS: u32 = 2;

/// A supervised saga over `store` (as the command API runs it) that parks
/// after [`ATTEMPTS`], until the token is cancelled.
fn start_saga(store: Arc<dyn EventStore>) -> (CancellationToken, JoinHandle<()>) {
    let saga = OrderSaga::new(
        Arc::clone(&store),
        Arc::new(Aggregates::new(Arc::clone(&store))),
        Arc::new(Aggregates::new(store)),
        SagaOptions {
            checkpoint_every: Duration::ZERO,
            poison_attempts: ATTEMPTS,
            retry_pause: Duration::from_millis(100),
            ..SagaOptions::default()
        },
    );
    let shutdown = CancellationToken::new();
    (shutdown.clone(), tokio::spawn(saga::supervise(saga, shutdown)))
}

/// An app whose own saga does not run, so tests drive sagas by hand; its
/// orders answer 202 pending at once.
async fn app_without_saga() -> App {
    let mut config = App::config();
    config.run_saga = false;
    config.order_wait = Duration::from_millis(50);
    App::start_with(config).await
}

/// Places an order (answered pending, or confirmed when a saga runs and
/// is quick); its id.
async fn place(app: &App, token: &str, items: &[(&str, i64)]) -> String {
    let (status, body) = app.order(token, items).await;
    assert!(
        [StatusCode::ACCEPTED, StatusCode::CREATED].contains(&status),
        "{status} {body}"
    );
    body["orderId"].as_str().unwrap().to_owned()
}

async fn parked(app: &App, admin: &str) -> Vec<Value> {
    let request = app.http.get(app.url("/saga/parked")).bearer_auth(admin);
    let (status, body) = test_support::respond(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["parked"].as_array().unwrap().clone()
}

async fn wait_for_parked(app: &App, admin: &str, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} parked event(s)"), || async {
        match parked(app, admin).await {
            list if list.len() == count => Ok(list),
            list => Err(format!("the list is {list:?}")),
        }
    })
    .await
}

/// A reservation for `order_id` in a newer schema version (2), in a product
/// stream of its own; its position.
async fn newer_reservation(app: &App, order_id: &str) -> Position {
    let data = json!({"orderId": order_id, "productId": uuid::Uuid::now_v7(), "quantity": 1});
    let event = new_event("StockReserved", 2, serde_json::to_vec(&data).unwrap());
    let stream = product_stream_name(&uuid::Uuid::now_v7().to_string());
    let outcome = app
        .store
        .append(&stream, ExpectedRevision::NoStream, vec![event])
        .await
        .unwrap();
    outcome.position
}

/// How many times the product `product_id` reserved stock for `order_id`.
async fn reservations(app: &App, product_id: &str, order_id: &str) -> usize {
    let stream = event_store::read_whole_stream(app.store.as_ref(), &product_stream_name(product_id))
        .await
        .unwrap();
    stream
        .iter()
        .filter(|e| e.event_type == "StockReserved")
        .filter(|e| serde_json::from_slice::<Value>(&e.data).unwrap()["orderId"] == order_id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_holds_back_only_its_order_which_goes_on_once_it_is_skipped() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let held = place(&app, &buyer, &[(&mug, 2)]).await;
    let poison = newer_reservation(&app, &held).await;
    let other = place(&app, &buyer, &[(&mug, 1)]).await;

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    app.wait_for_status(&other, OrderStatus::Confirmed).await;
    let listed = wait_for_parked(&app, &admin, 1).await;
    assert_eq!(listed[0]["position"], poison.to_string());
    assert_eq!(
        listed[0]["orderId"],
        held.as_str(),
        "the order it concerns, read from its payload"
    );
    assert_eq!(listed[0]["eventType"], "StockReserved");
    // Later orders flow; the held-back order waits.
    let later = place(&app, &buyer, &[(&mug, 3)]).await;
    app.wait_for_status(&later, OrderStatus::Confirmed).await;
    assert_eq!(app.order_status(&held).await, OrderStatus::Pending);

    let path = format!("/saga/parked/{poison}/skip");
    let (status, body) = test_support::respond(app.http.post(app.url(&path)).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.wait_for_status(&held, OrderStatus::Confirmed).await;
    assert_eq!(app.available(&mug).await, 4, "10 - 1 - 3 - 2");
    assert_eq!(reservations(&app, &mug, &held).await, 1, "reserved once");
    shutdown.cancel();
    running.await.unwrap();
    assert!(parked(&app, &admin).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reservation_for_an_order_whose_stream_cannot_be_read_is_parked() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let first = place(&app, &buyer, &[(&mug, 2)]).await;
    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    app.wait_for_status(&first, OrderStatus::Confirmed).await;
    shutdown.cancel();
    running.await.unwrap();

    // A newer build notes something in the order's stream, of a type this
    // build does not know: the saga passes over it in the log, but cannot
    // load the order. Then a late reservation for the order comes (a copy
    // of its real one, in another product's stream), which the saga, not
    // remembering the order, decides from the order's stream.
    let stream = order_stream_name(&first);
    let last = app.store.read_last(&stream).await.unwrap().unwrap();
    let noted = new_event("OrderNoted", 1, b"{}".to_vec());
    app.store
        .append(&stream, ExpectedRevision::Exact(last.revision), vec![noted])
        .await
        .unwrap();
    let mug_events = event_store::read_whole_stream(app.store.as_ref(), &product_stream_name(&mug))
        .await
        .unwrap();
    let reserved = mug_events.iter().find(|e| e.event_type == "StockReserved").unwrap();
    let late = new_event("StockReserved", 1, reserved.data.clone());
    let elsewhere = product_stream_name(&uuid::Uuid::now_v7().to_string());
    let late = app
        .store
        .append(&elsewhere, ExpectedRevision::NoStream, vec![late])
        .await
        .unwrap();

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    let second = place(&app, &buyer, &[(&mug, 1)]).await;
    app.wait_for_status(&second, OrderStatus::Confirmed).await;
    let listed = wait_for_parked(&app, &admin, 1).await;
    assert_eq!(listed[0]["position"], late.position.to_string());
    assert_eq!(listed[0]["orderId"], first.as_str());
    assert!(
        listed[0]["error"].as_str().unwrap().contains("OrderNoted"),
        "{}",
        listed[0]
    );
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_parks_nothing() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let order = place(&app, &buyer, &[(&mug, 2)]).await;
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    faulty.fail_appends_to(product_stream_name(&mug));
    let (shutdown, running) = start_saga(faulty.clone());
    let tries = 3 * ATTEMPTS as usize;
    wait_for(&format!("{tries} failed reservations"), || async {
        match faulty.failed_appends() {
            n if n >= tries => Ok(()),
            n => Err(format!("{n} so far")),
        }
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
    assert!(parked(&app, &admin).await.is_empty(), "an outage parks nothing");
    assert_eq!(app.order_status(&order).await, OrderStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sagas_park_an_event_once() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let held = place(&app, &buyer, &[(&mug, 2)]).await;
    newer_reservation(&app, &held).await;
    let runners: Vec<_> = (0..2).map(|_| start_saga(Arc::clone(&app.store))).collect();
    let other = place(&app, &buyer, &[(&mug, 1)]).await;
    app.wait_for_status(&other, OrderStatus::Confirmed).await;
    wait_for_parked(&app, &admin, 1).await;
    // Both have gone past it: their checkpoints' saves come after the other order.
    let later = place(&app, &buyer, &[(&mug, 1)]).await;
    app.wait_for_status(&later, OrderStatus::Confirmed).await;
    for (shutdown, running) in runners {
        shutdown.cancel();
        running.await.unwrap();
    }
    let records = event_store::read_whole_stream(app.store.as_ref(), &StreamName::new(PARKED_STREAM).unwrap())
        .await
        .unwrap();
    assert_eq!(
        records.iter().filter(|e| e.event_type == "EventParked").count(),
        1,
        "{records:?}"
    );
}

/// A park caused by a refused command, not by the event itself: the
/// product an order reserves has an event of a type this build does not
/// know (a newer build's), so it cannot be loaded and the reservation is
/// refused. The placement and the order's stream read fine, yet a retry
/// must answer 409 while the reservation is still refused, and record one
/// more attempt, instead of resolving the event for the saga to park again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_an_event_whose_command_is_still_refused_answers_409() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let stream = product_stream_name(&mug);
    let last = app.store.read_last(&stream).await.unwrap().unwrap();
    let newer = new_event("ProductDiscontinued", 1, b"{}".to_vec());
    app.store
        .append(&stream, ExpectedRevision::Exact(last.revision), vec![newer])
        .await
        .unwrap();
    let held = place(&app, &buyer, &[(&mug, 2)]).await;

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    let listed = wait_for_parked(&app, &admin, 1).await;
    assert_eq!(listed[0]["orderId"], held.as_str());
    assert_eq!(listed[0]["eventType"], "OrderPlaced");
    assert_eq!(listed[0]["attempts"], ATTEMPTS);
    let position = listed[0]["position"].as_str().unwrap().to_owned();

    let path = format!("/saga/parked/{position}/retry");
    let (answer, problem) = test_support::respond(app.http.post(app.url(&path)).bearer_auth(&admin)).await;
    assert_eq!(answer, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("ProductDiscontinued"),
        "{problem}"
    );
    let after = parked(&app, &admin).await;
    assert_eq!(after.len(), 1, "still parked: {after:?}");
    assert_eq!(after[0]["position"], position.as_str());
    assert_eq!(after[0]["attempts"], ATTEMPTS + 1);
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(app.order_status(&held).await, OrderStatus::Pending);
    let records = event_store::read_whole_stream(app.store.as_ref(), &StreamName::new(PARKED_STREAM).unwrap())
        .await
        .unwrap();
    assert!(
        records.iter().all(|e| e.event_type != "ParkedEventResolved"),
        "{records:?}"
    );
}

/// A retry answers 204 when what the event causes now succeeds: here an
/// order's placement parked by an older build (a record written as it
/// would have), which this build handles. The retry itself reserves; the
/// saga, picking the order up again, confirms it without reserving twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_an_event_that_now_succeeds_answers_204_and_its_order_goes_on() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let held = place(&app, &buyer, &[(&mug, 2)]).await;
    let placed = app.order_stream(&held).await[0].clone();
    let record = saga::parked::ParkedEvent {
        subscriber: "saga".to_owned(),
        position: placed.position,
        stream: placed.stream.clone(),
        revision: placed.revision,
        event_type: placed.event_type.clone(),
        order_id: Some(held.parse().unwrap()),
        error: "refused by an older build".to_owned(),
        instance: "older:1".to_owned(),
        attempts: ATTEMPTS,
        parked_at: chrono::Utc::now(),
        replay_after: None,
        replay_from_start: true,
    };
    assert!(saga::parked::park(app.store.as_ref(), &record).await.unwrap());

    let (shutdown, running) = start_saga(Arc::clone(&app.store));
    let other = place(&app, &buyer, &[(&mug, 1)]).await;
    app.wait_for_status(&other, OrderStatus::Confirmed).await;
    assert_eq!(app.order_status(&held).await, OrderStatus::Pending, "held back");
    let path = format!("/saga/parked/{}/retry", placed.position);
    let (answer, body) = test_support::respond(app.http.post(app.url(&path)).bearer_auth(&admin)).await;
    assert_eq!(answer, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        reservations(&app, &mug, &held).await,
        1,
        "the retry reserved before answering"
    );
    app.wait_for_status(&held, OrderStatus::Confirmed).await;
    assert!(parked(&app, &admin).await.is_empty());
    assert_eq!(reservations(&app, &mug, &held).await, 1, "reserved once");
    assert_eq!(app.available(&mug).await, 7, "10 - 1 - 2");
    shutdown.cancel();
    running.await.unwrap();
}
