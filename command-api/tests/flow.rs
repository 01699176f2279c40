//! The whole command-side journey over real HTTP.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::available;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_confirmed_stock_goes_down_and_comes_back_on_cancel() {
    let app = support::start().await;
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
    assert_eq!(available(&app, &mug).await, 7);
    assert_eq!(available(&app, &pen).await, 97);

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
    // The saga releases the stock right after the cancellation is recorded.
    for _ in 0..100 {
        if available(&app, &mug).await == 10 && available(&app, &pen).await == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(available(&app, &mug).await, 10);
    assert_eq!(available(&app, &pen).await, 100);

    let (status, again) = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&alice),
            &json!({"reason": "twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "cancelling again changes nothing: {again}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_beyond_the_stock_is_rejected_with_reasons_and_holds_nothing() {
    let app = support::start().await;
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
    for _ in 0..100 {
        if available(&app, &pen).await == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(available(&app, &pen).await, 100, "the reserved line is released");
    assert_eq!(available(&app, &mug).await, 5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_rename_reprice_and_restock_and_confirmed_orders_keep_their_price() {
    let app = support::start().await;
    let admin = app.admin().await;
    let carol = app.customer("carol").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 1).await;
    let (status, order) = app.order(&carol, &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

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
    assert_eq!(available(&app, &mug).await, 4);

    let (status, second) = app.order(&carol, &[(&mug, 2)]).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["lines"][0]["unitPrice"], "20.00");
    assert_eq!(second["lines"][0]["name"], "Big mug");
    assert_eq!(order["lines"][0]["unitPrice"], "12.50");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_cancels_another_customers_order_or_learns_it_exists() {
    let app = support::start().await;
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
    assert_eq!(available(&app, &mug).await, 9);
    app.stop().await;
}
