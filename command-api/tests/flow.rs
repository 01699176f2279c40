//! The whole command-side journey over real HTTP.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use domain::event::DomainEvent;
use domain::order::OrderState;
use domain::product::ProductEvent;
use reqwest::StatusCode;
use serde_json::json;
use test_support::faulty_store::OUTAGE;
use test_support::{App, wait_for};

/// Cancelling twice is answered twice but recorded once: the second cancel
/// appends nothing and releases nothing, and the stock still balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_confirmed_stock_goes_down_and_comes_back_on_cancel() {
    let app = App::start().await;
    let alice = app.customer("alice").await;
    let admin = app.admin().await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let pen = app.product(&admin, "PEN-1", "1.99", 100).await;

    let (status, order) = app.order(&alice, &[(&mug, 2), (&pen, 3), (&mug, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total"], "43.47");
    assert_eq!(order["lines"][0]["quantity"], 3, "lines of one product are merged");
    assert_eq!(order["lines"][0]["unitPrice"], "12.50");
    assert_eq!(order["lines"][0]["lineTotal"], "37.50");
    assert!(order["position"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(app.available(&mug).await, 7);
    assert_eq!(app.available(&pen).await, 97);

    let order_id = order["orderId"].as_str().unwrap();
    let (status, cancelled) = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&alice),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_released(&app, order_id, &[&mug, &pen]).await;
    assert_eq!(app.available(&mug).await, 10);
    assert_eq!(app.available(&pen).await, 100);
    app.stock_balances().await.unwrap();

    let log_before = app.decisions().await.len();
    let (status, again) = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&alice),
            &json!({"reason": "twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "cancelling again is answered: {again}");
    assert_eq!(again["status"], "cancelled");
    assert_eq!(
        app.decisions().await.len(),
        log_before,
        "cancelling again appends nothing"
    );
    let stream: Vec<String> = app
        .order_stream(order_id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(stream, ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]);
    assert_eq!(app.available(&mug).await, 10, "cancelling again releases nothing");
    assert_eq!(app.available(&pen).await, 100, "cancelling again releases nothing");
    app.stock_balances().await.unwrap();
    app.stop().await;
}

/// Waits for the saga's release of `order_id` on each of `products`: a
/// `StockReleased` naming the order in the product's stream.
async fn assert_released(app: &App, order_id: &str, products: &[&str]) {
    wait_for(&format!("the release of order {order_id}'s stock"), || async move {
        let events = app.events().await;
        let missing: Vec<&&str> = products
            .iter()
            .filter(|product| {
                !events.iter().any(|e| {
                    e.stream == ProductEvent::stream_name(product)
                        && e.event_type == "StockReleased"
                        && serde_json::from_slice::<serde_json::Value>(&e.data).unwrap()["orderId"] == order_id
                })
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no release yet on {missing:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_beyond_the_stock_is_rejected_with_reasons_and_holds_nothing() {
    let app = App::start().await;
    let bob = app.customer("bob").await;
    let admin = app.admin().await;
    let mug = app.product(&admin, "MUG-1", "12.50", 5).await;
    let pen = app.product(&admin, "PEN-1", "1.99", 100).await;
    let ghost = uuid::Uuid::new_v4().to_string();

    let (status, order) = app.order(&bob, &[(&pen, 10), (&mug, 6), (&ghost, 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{order}");
    assert_eq!(order["status"], "rejected");
    let failures = order["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["productId"], mug.as_str());
    assert_eq!(failures[0]["reason"], "insufficientStock");
    assert_eq!(failures[0]["requested"], 6);
    assert_eq!(failures[0]["available"], 5);
    assert_eq!(failures[1]["productId"], ghost.as_str());
    assert_eq!(failures[1]["reason"], "productNotFound");
    let order_id = order["orderId"].as_str().unwrap();
    assert_released(&app, order_id, &[&pen]).await;
    assert_eq!(app.available(&pen).await, 100, "the reserved line is released");
    assert_eq!(app.available(&mug).await, 5);
    app.stock_balances().await.unwrap();
    app.stop().await;
}

/// The first order is read again after the catalog changed, from the log
/// and through the command API (a retry with its `Idempotency-Key` answers
/// the order as it stands): it kept the price and name it was confirmed
/// with, while an order placed after the change gets the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_rename_reprice_and_restock_and_confirmed_orders_keep_their_price() {
    let app = App::start().await;
    let admin = app.admin().await;
    let carol = app.customer("carol").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 1).await;
    let place_first = || app.order_with_key(&carol, "carol-first", &[(&mug, 1)]);
    let (status, order) = place_first().await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["lines"][0]["unitPrice"], "12.50");
    let first_id = order["orderId"].as_str().unwrap().to_owned();

    let (status, body) = app
        .put(&format!("/products/{mug}/price"), Some(&admin), &json!({"price": "20"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .put(
            &format!("/products/{mug}/name"),
            Some(&admin),
            &json!({"name": "Big mug"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/products/{mug}/restock"),
            Some(&admin),
            &json!({"quantity": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.available(&mug).await, 4);

    let (status, second) = app.order(&carol, &[(&mug, 2)]).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["lines"][0]["unitPrice"], "20.00");
    assert_eq!(second["lines"][0]["name"], "Big mug");
    assert_eq!(second["total"], "40.00");

    let snapshot = |state: OrderState| match state {
        OrderState::Confirmed(order) => (
            order.lines[0].unit_price.to_string(),
            order.lines[0].name.to_string(),
            order.total.to_string(),
        ),
        other => panic!("not confirmed: {other:?}"),
    };
    assert_eq!(
        snapshot(app.order_state(&first_id).await),
        ("12.50".to_owned(), "Product MUG-1".to_owned(), "12.50".to_owned()),
        "the first order in the log, after the reprice and the rename"
    );
    assert_eq!(
        snapshot(app.order_state(second["orderId"].as_str().unwrap()).await),
        ("20.00".to_owned(), "Big mug".to_owned(), "40.00".to_owned()),
        "the second order in the log"
    );
    let (status, again) = place_first().await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["orderId"], first_id.as_str(), "the retry names the first order");
    assert_eq!(again["status"], "confirmed");
    assert_eq!(again["lines"][0]["unitPrice"], "12.50");
    assert_eq!(again["lines"][0]["name"], "Product MUG-1");
    assert_eq!(again["total"], "12.50");
    assert_eq!(app.available(&mug).await, 2, "the retry placed nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_cancels_another_customers_order_or_learns_it_exists() {
    let app = App::start().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let mallory = app.customer("mallory").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let (_, order) = app.order(&alice, &[(&mug, 1)]).await;
    let order_id = order["orderId"].as_str().unwrap();

    let (theirs, body) = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&mallory),
            &json!({"reason": "mine now"}),
        )
        .await;
    let missing = uuid::Uuid::new_v4();
    let (nobodys, _) = app
        .post(
            &format!("/orders/{missing}/cancel"),
            Some(&mallory),
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(theirs, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(nobodys, StatusCode::NOT_FOUND);
    assert_eq!(app.available(&mug).await, 9);
    app.stop().await;
}

/// A retry with the `Idempotency-Key` of an order cancelled since finds it
/// cancelled: 201 with the lines it was confirmed with, and nothing placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_order_cancelled_since_is_answered_as_cancelled() {
    let app = App::start().await;
    let admin = app.admin().await;
    let dave = app.customer("dave").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let place = || app.order_with_key(&dave, "dave-1", &[(&mug, 2)]);
    let (status, order) = place().await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["orderId"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&dave),
            &json!({"reason": "too many mugs"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_released(&app, order_id, &[&mug]).await;
    let log_before = app.decisions().await.len();

    let (status, again) = place().await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["orderId"], order_id);
    assert_eq!(again["status"], "cancelled");
    assert_eq!(again["lines"], order["lines"]);
    assert_eq!(again["total"], "25.00");
    assert_eq!(app.decisions().await.len(), log_before, "the retry placed nothing");
    app.stop().await;
}

/// While the event store is unavailable, commands are answered 503 with
/// `Retry-After` (not 500), without the store's own words; once it is back,
/// the same order is placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_503_with_retry_after_while_the_store_is_down() {
    let (app, store) = App::start_faulty(App::config()).await;
    let admin = app.admin().await;
    let erin = app.customer("erin").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let place = || {
        app.order_request(&erin, &[(&mug, 1)])
            .header("Idempotency-Key", "erin-1")
            .send()
    };

    store.go_down();
    let response = place().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/store-unavailable", "{problem}");
    assert!(
        !problem["detail"].as_str().unwrap().contains(OUTAGE),
        "the store's own words stay in the log: {problem}"
    );
    let (status, body) = app
        .post(
            &format!("/products/{mug}/restock"),
            Some(&admin),
            &json!({"quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    store.come_back();
    let response = place().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    app.stop().await;
}
