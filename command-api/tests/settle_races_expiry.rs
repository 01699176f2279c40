//! A payment racing its order's expiry, end to end over HTTP: the saga
//! expires unpaid orders a short window after their confirmation while an
//! administrator settles the same orders around their due time. For every
//! order exactly one side wins: either it is paid and never cancelled, or
//! it is cancelled (`payment window expired`, its stock back once) and the
//! payment is answered 409 saying so. Never both, never neither. The second
//! test makes the race certain: both decide on the same revision, and their
//! appends are let go together.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{App, order_stream_name, respond, wait_for};

const ORDERS: usize = 12;
const WINDOW_MS: i64 = 1_500;

/// When `order_id`'s payment is due, as its confirmation recorded it.
async fn due(app: &App, order_id: &str) -> chrono::DateTime<chrono::Utc> {
    let confirmed = app
        .order_stream(order_id)
        .await
        .into_iter()
        .find(|e| e.event_type == "OrderConfirmed")
        .unwrap();
    let data: Value = serde_json::from_slice(&confirmed.data).unwrap();
    data["paymentDue"].as_str().unwrap().parse().unwrap()
}

/// Settles `order_id` for 5.00 at `at` (give or take the scheduler).
async fn settle_at(app: &App, admin: &str, order_id: &str, at: chrono::DateTime<chrono::Utc>) -> (StatusCode, Value) {
    let wait = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::time::sleep(wait).await;
    let body = json!({"reference": format!("pi_{order_id}"), "amount": "5.00"});
    respond(
        app.http
            .post(app.url(&format!("/orders/{order_id}/payment")))
            .bearer_auth(admin)
            .json(&body),
    )
    .await
}

/// The event types of the order's stream.
async fn types(app: &App, order_id: &str) -> Vec<String> {
    app.order_stream(order_id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// How many times the saga released `order_id`'s stock.
async fn releases(app: &App, order_id: &str) -> usize {
    app.events()
        .await
        .iter()
        .filter(|e| {
            e.event_type == "StockReleased" && serde_json::from_slice::<Value>(&e.data).unwrap()["orderId"] == order_id
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_racing_the_expiry_either_settles_or_is_refused_never_both() {
    let mut config = App::config();
    config.saga.payment_window = chrono::TimeDelta::milliseconds(WINDOW_MS);
    let app = App::start_with(config).await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let pen = app.product(&admin, "PEN-1", "5.00", 100).await;

    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        let (status, order) = app.order(&alice, &[(&pen, 1)]).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        orders.push(order["orderId"].as_str().unwrap().to_owned());
    }
    // Each payment is sent at a different moment around its order's due
    // time, from well before it to well after it, all at once.
    let settles = orders.iter().enumerate().map(|(n, order_id)| {
        let (app, admin) = (&app, admin.as_str());
        async move {
            let offset = chrono::TimeDelta::milliseconds(n as i64 * 60 - 300);
            let answer = settle_at(app, admin, order_id, due(app, order_id).await + offset).await;
            (order_id.clone(), answer)
        }
    });
    let answers = futures::future::join_all(settles).await;

    let (mut paid, mut expired) = (0, 0);
    for (order_id, (status, body)) in answers {
        let outcome = wait_for("the order paid or expired", || {
            let app = &app;
            let order_id = order_id.clone();
            async move {
                let types = types(app, &order_id).await;
                let paid = types.iter().any(|t| t == "PaymentSettled");
                let cancelled = types.iter().any(|t| t == "OrderCancelled");
                if paid || cancelled {
                    Ok(types)
                } else {
                    Err(format!("{types:?}"))
                }
            }
        })
        .await;
        match status {
            StatusCode::OK => {
                paid += 1;
                assert_eq!(body["paymentStatus"], "settled", "{body}");
                assert_eq!(
                    outcome,
                    ["OrderPlaced", "OrderConfirmed", "PaymentSettled"],
                    "a paid order is never expired"
                );
            }
            StatusCode::CONFLICT => {
                expired += 1;
                assert_eq!(
                    body["detail"], "the order was cancelled: payment window expired; it cannot be paid",
                    "{body}"
                );
                assert_eq!(outcome, ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]);
                let released = wait_for("the expired order's stock released", || {
                    let (app, order_id) = (&app, order_id.clone());
                    async move {
                        match releases(app, &order_id).await {
                            0 => Err("not yet".to_owned()),
                            n => Ok(n),
                        }
                    }
                })
                .await;
                assert_eq!(released, 1, "released once");
            }
            other => panic!("settling {order_id} answered {other}: {body}"),
        }
    }
    assert_eq!(paid + expired, ORDERS);
    println!("{paid} paid, {expired} expired");
    // Paid orders keep their stock; expired ones gave it back.
    wait_for("the stock back for every expired order", || {
        let (app, pen) = (&app, pen.as_str());
        async move {
            let available = app.available(pen).await;
            if available == (100 - paid) as u32 {
                Ok(())
            } else {
                Err(format!("{available} available"))
            }
        }
    })
    .await;
    app.assert_stock_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_and_an_expiry_decided_on_the_same_revision_cannot_both_be_appended() {
    let mut config = App::config();
    config.saga.payment_window = chrono::TimeDelta::milliseconds(WINDOW_MS);
    let (app, store) = App::start_faulty(config).await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let pen = app.product(&admin, "PEN-1", "5.00", 10).await;
    let (status, order) = app.order(&alice, &[(&pen, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["orderId"].as_str().unwrap().to_owned();

    store.hold_appends_to(order_stream_name(&order_id));
    let settling = {
        let (app, admin, order_id) = (&app, admin.clone(), order_id.clone());
        async move { settle_at(app, &admin, &order_id, chrono::Utc::now()).await }
    };
    let held_both = async {
        wait_for("the payment and the expiry both waiting to append", || {
            let store = &store;
            async move {
                match store.held_appends() {
                    2 => Ok(()),
                    n => Err(format!("{n} held")),
                }
            }
        })
        .await;
        store.release_held();
    };
    let ((status, body), ()) = tokio::join!(settling, held_both);

    let types = types(&app, &order_id).await;
    match status {
        StatusCode::OK => assert_eq!(types, ["OrderPlaced", "OrderConfirmed", "PaymentSettled"]),
        StatusCode::CONFLICT => {
            assert_eq!(
                body["detail"], "the order was cancelled: payment window expired; it cannot be paid",
                "{body}"
            );
            assert_eq!(types, ["OrderPlaced", "OrderConfirmed", "OrderCancelled"]);
        }
        other => panic!("settling answered {other}: {body}"),
    }
    app.assert_stock_balances().await;
}
