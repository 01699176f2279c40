//! Settling payments, closing orders and cancelling them in each state,
//! over real HTTP: by an administrator and by the payment provider's
//! signed webhook.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use command_api::aggregates::{Aggregates, Causation};
use command_api::webhook::{TOLERANCE_SECONDS, WebhookSecret, signature};
use domain::order::{Order, OrderCommand, Refusal};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{App, respond, wait_for};

const SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";

/// The test configuration with the webhook secret.
async fn start_with_secret() -> App {
    let mut config = App::config();
    config.payment_webhook_secret = Some(WebhookSecret::parse(SECRET).unwrap());
    App::start_with(config).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `Shop-Signature` of `body` for the order at `timestamp` with `secret`.
fn signed(secret: &str, timestamp: i64, order_id: &str, body: &str) -> String {
    format!(
        "t={timestamp},v1={}",
        signature::sign(secret.as_bytes(), timestamp, order_id, body.as_bytes())
    )
}

fn payment(reference: &str, amount: &str) -> String {
    json!({"reference": reference, "amount": amount}).to_string()
}

/// `POST /orders/{id}/payment` with `body` as these exact bytes, by an
/// administrator's (or anyone's) token or with a `Shop-Signature`.
async fn settle(
    app: &App,
    order_id: &str,
    token: Option<&str>,
    signature: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(app.url(&format!("/orders/{order_id}/payment")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(signature) = signature {
        request = request.header("Shop-Signature", signature);
    }
    respond(request).await
}

async fn close(app: &App, order_id: &str, token: &str) -> (StatusCode, Value) {
    respond(
        app.http
            .post(app.url(&format!("/orders/{order_id}/close")))
            .bearer_auth(token),
    )
    .await
}

async fn cancel(app: &App, order_id: &str, token: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/orders/{order_id}/cancel"),
        Some(token),
        &json!({"reason": "changed my mind"}),
    )
    .await
}

/// A confirmed order of 2 × 12.50 + 3 × 1.99 = 30.97 by `customer`: its id.
async fn confirmed_order(app: &App, customer: &str, admin: &str, sku: &str) -> (String, String) {
    let mug = app.product(admin, sku, "12.50", 10).await;
    let (status, order) = app.order(customer, &[(&mug, 2)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["total"], "25.00");
    (order["orderId"].as_str().unwrap().to_owned(), mug)
}

/// The types of the order's events, oldest first.
async fn stream(app: &App, order_id: &str) -> Vec<String> {
    app.order_stream(order_id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// How many `StockReleased` of `order_id` the product's stream holds, once
/// the saga released it.
async fn released_once(app: &App, order_id: &str, product: &str) {
    let count = || async move {
        let releases = app
            .events()
            .await
            .into_iter()
            .filter(|e| {
                e.event_type == "StockReleased"
                    && serde_json::from_slice::<Value>(&e.data).unwrap()["orderId"] == order_id
                    && serde_json::from_slice::<Value>(&e.data).unwrap()["productId"] == product
            })
            .count();
        if releases > 0 {
            Ok(releases)
        } else {
            Err("no release yet".to_owned())
        }
    };
    assert_eq!(wait_for("the release of the order's stock", count).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_settles_once_per_reference_then_closes_and_a_closed_order_stays_closed() {
    let app = App::start().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (order_id, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;

    let (status, problem) = close(&app, &order_id, &admin).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"], "only a settled order can be closed; this one's payment is arranged",
        "{problem}"
    );

    let before = app.decisions().await.len();
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &payment("pi_1", "25.01")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "amount", "{problem}");
    assert_eq!(problem["type"], "/problems/amount-mismatch", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("25.00"), "{problem}");
    assert_eq!(app.decisions().await.len(), before, "a mismatch appends nothing");

    let (status, problem) = settle(&app, &order_id, Some(&alice), None, &payment("pi_1", "25.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer cannot settle: {problem}");
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &payment("pi 1", "25.00")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "reference", "{problem}");
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &payment("pi_1", "25.001")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "amount", "{problem}");
    let nobody = uuid::Uuid::new_v4();
    let (status, problem) = settle(&app, &nobody.to_string(), Some(&admin), None, &payment("pi_1", "25.00")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    let (status, settled) = settle(&app, &order_id, Some(&admin), None, &payment("pi_1", "25")).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!(settled["orderId"], order_id.as_str());
    assert_eq!(settled["status"], "confirmed");
    assert_eq!(settled["paymentStatus"], "settled");
    assert_eq!(settled["paymentReference"], "pi_1");
    assert_eq!(settled["amount"], "25.00");
    assert!(
        settled["settledAt"].is_string() && settled["position"].is_string(),
        "{settled}"
    );
    let (status, again) = settle(&app, &order_id, Some(&admin), None, &payment("pi_1", "25.00")).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &settled),
        "the same reference, the same answer"
    );
    assert_eq!(
        stream(&app, &order_id).await,
        ["OrderPlaced", "OrderConfirmed", "PaymentSettled"]
    );
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &payment("pi_2", "25.00")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["type"], "/problems/already-settled", "{problem}");

    let (status, problem) = close(&app, &order_id, &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, closed) = close(&app, &order_id, &admin).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["paymentStatus"], "settled");
    assert!(closed["closedAt"].is_string(), "{closed}");
    let (status, again) = close(&app, &order_id, &admin).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &closed),
        "closing again changes nothing"
    );
    let (status, problem) = cancel(&app, &order_id, &alice).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["detail"], "a closed order cannot be cancelled");
    assert_eq!(
        stream(&app, &order_id).await,
        ["OrderPlaced", "OrderConfirmed", "PaymentSettled", "OrderClosed"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_settles_and_wrong_stale_malformed_or_replayed_signatures_are_refused() {
    let app = start_with_secret().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (order_id, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let body = payment("pi_hook", "25.00");

    let refusals = [
        (
            signed("another secret of at least thirty-two bytes", now(), &order_id, &body),
            "does not match",
        ),
        (
            signed(SECRET, now() - TOLERANCE_SECONDS - 60, &order_id, &body),
            "more than 300 seconds",
        ),
        (
            signed(SECRET, now() + TOLERANCE_SECONDS + 60, &order_id, &body),
            "more than 300 seconds",
        ),
        ("v1=00".to_owned(), "must read t="),
        (
            signed(SECRET, now(), &order_id, &payment("pi_hook", "25.0")),
            "does not match",
        ),
    ];
    for (header, detail) in &refusals {
        let (status, problem) = settle(&app, &order_id, None, Some(header), &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{header}: {problem}"
        );
    }
    assert_eq!(stream(&app, &order_id).await, ["OrderPlaced", "OrderConfirmed"]);

    let header = signed(SECRET, now(), &order_id, &body);
    let (status, settled) = settle(&app, &order_id, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!(settled["paymentStatus"], "settled");
    assert_eq!(settled["paymentReference"], "pi_hook");
    let (status, problem) = settle(&app, &order_id, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["detail"], "this Shop-Signature was used already");

    // The provider retries, signing anew: the same answer, nothing new.
    let spaced = format!(" {body}");
    let retry = signed(SECRET, now() + 1, &order_id, &spaced);
    let (status, again) = settle(&app, &order_id, None, Some(&retry), &spaced).await;
    assert_eq!((status, &again), (StatusCode::OK, &settled));
    assert_eq!(
        stream(&app, &order_id).await,
        ["OrderPlaced", "OrderConfirmed", "PaymentSettled"]
    );
    let settled_by = app.order_stream(&order_id).await.pop().unwrap().metadata.user_id;
    assert_eq!(settled_by, None, "the provider is no user");
    app.stop().await;
}

/// A captured signed request re-sent to another order of the same total
/// settles nothing there: the signature binds the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_for_one_order_is_refused_for_another_and_appends_nothing() {
    let app = start_with_secret().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (signed_for, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let (other, _) = confirmed_order(&app, &alice, &admin, "CUP-1").await;
    let body = payment("pi_hook", "25.00");
    let header = signed(SECRET, now(), &signed_for, &body);

    let before = app.decisions().await.len();
    let (status, problem) = settle(&app, &other, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(
        problem["detail"],
        "the Shop-Signature does not match this order and body"
    );
    assert_eq!(app.decisions().await.len(), before, "nothing appended");
    assert_eq!(stream(&app, &other).await, ["OrderPlaced", "OrderConfirmed"]);

    let (status, settled) = settle(&app, &signed_for, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::OK, "its own order it settles: {settled}");
    app.stop().await;
}

/// A signed request whose settle failed is not spent: the provider's
/// resend of it settles once it can; a replay after that 200 is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_answered_503_settles_when_resent_and_only_a_settled_one_is_spent() {
    let mut config = App::config();
    config.payment_webhook_secret = Some(WebhookSecret::parse(SECRET).unwrap());
    let (app, faulty) = App::start_faulty(config).await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (order_id, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let body = payment("pi_hook", "25.00");
    let header = signed(SECRET, now(), &order_id, &body);

    faulty.go_down();
    let (status, problem) = settle(&app, &order_id, None, Some(&header), &body).await;
    faulty.come_back();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");

    let (status, settled) = settle(&app, &order_id, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::OK, "the resend settles: {settled}");
    assert_eq!(settled["paymentReference"], "pi_hook");
    let (status, problem) = settle(&app, &order_id, None, Some(&header), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["detail"], "this Shop-Signature was used already");
    assert_eq!(
        stream(&app, &order_id).await,
        ["OrderPlaced", "OrderConfirmed", "PaymentSettled"]
    );
    app.stop().await;
}

/// Who asks is judged before what is asked: a malformed body tells an
/// unauthorised caller nothing about its fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_401_unsigned_403_for_a_customer_and_400_naming_the_field_for_an_admin() {
    let app = start_with_secret().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (order_id, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let body = payment("pi 1", "25.00");

    let forged = signed("another secret of at least thirty-two bytes", now(), &order_id, &body);
    let (status, problem) = settle(&app, &order_id, None, Some(&forged), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a forged signature: {problem}");
    assert_eq!(
        problem["detail"],
        "the Shop-Signature does not match this order and body"
    );
    let (status, problem) = settle(&app, &order_id, None, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials: {problem}");
    let (status, problem) = settle(&app, &order_id, Some(&alice), None, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer: {problem}");
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "reference", "{problem}");
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not JSON: {problem}");

    let signed_body = payment("pi_1", "25.0x");
    let header = signed(SECRET, now(), &order_id, &signed_body);
    let (status, problem) = settle(&app, &order_id, None, Some(&header), &signed_body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the provider, authorised: {problem}");
    assert_eq!(problem["field"], "amount", "{problem}");
    assert_eq!(stream(&app, &order_id).await, ["OrderPlaced", "OrderConfirmed"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_a_signed_request_is_refused_and_an_admin_still_settles() {
    let app = App::start().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (order_id, _) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let body = payment("pi_1", "25.00");
    let (status, problem) = settle(
        &app,
        &order_id,
        None,
        Some(&signed(SECRET, now(), &order_id, &body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("PAYMENT_WEBHOOK_SECRET"),
        "{problem}"
    );
    let (status, problem) = settle(&app, &order_id, None, None, &body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "neither token nor signature: {problem}"
    );
    let (status, settled) = settle(&app, &order_id, Some(&admin), None, &body).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_cancelled_order_cannot_be_paid_and_the_answer_says_why() {
    let app = App::start().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 1).await;
    let (status, rejected) = app.order(&alice, &[(&mug, 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{rejected}");
    let rejected = rejected["orderId"].as_str().unwrap();
    let (status, problem) = settle(&app, rejected, Some(&admin), None, &payment("pi_1", "25.00")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["detail"], "the order was rejected; it cannot be paid");

    let (order_id, _) = confirmed_order(&app, &alice, &admin, "CUP-1").await;
    let (status, cancelled) = cancel(&app, &order_id, &alice).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let (status, problem) = settle(&app, &order_id, Some(&admin), None, &payment("pi_1", "25.00")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"], "the order was cancelled: changed my mind; it cannot be paid",
        "{problem}"
    );
    let (status, problem) = close(&app, &order_id, &admin).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"],
        "only a settled order can be closed; the order was cancelled: changed my mind"
    );

    // Expired as the saga expires it: the reason is the system's.
    let (expired, _) = confirmed_order(&app, &alice, &admin, "PEN-1").await;
    let orders = Aggregates::<Order>::new(Arc::clone(&app.store));
    let later = chrono::Utc::now() + chrono::TimeDelta::days(1);
    orders
        .execute(&expired, Causation::request(uuid::Uuid::now_v7(), None), || {
            OrderCommand::Expire {
                now: later,
                window: chrono::TimeDelta::minutes(30),
            }
        })
        .await
        .unwrap();
    let (status, problem) = settle(&app, &expired, Some(&admin), None, &payment("pi_2", "25.00")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"], "the order was cancelled: payment window expired; it cannot be paid",
        "{problem}"
    );
    app.assert_stock_balances().await;
    app.stop().await;
}

/// Without a saga the order stays pending: it cannot be paid yet, and a
/// refusal appended as the saga would append it answers the retried
/// request 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_order_cannot_be_paid_and_a_refused_one_answers_429() {
    let mut config = App::config();
    config.run_saga = false;
    config.max_order_waiters = 0;
    let app = App::start_with(config).await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let (status, pending) = app.order_with_key(&alice, "k-1", &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let order_id = pending["orderId"].as_str().unwrap();
    let (status, problem) = settle(&app, order_id, Some(&admin), None, &payment("pi_1", "12.50")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"],
        "the order is still pending: its stock is not reserved yet; it cannot be paid"
    );
    let (status, problem) = cancel(&app, order_id, &alice).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(
        problem["detail"],
        "only a confirmed order can be cancelled; the order is still pending: its stock is not reserved yet"
    );

    let refusal = Refusal::TooManyUnsettledOrders { limit: 5 };
    let orders = Aggregates::<Order>::new(Arc::clone(&app.store));
    orders
        .execute(order_id, Causation::request(uuid::Uuid::now_v7(), None), || {
            OrderCommand::Refuse {
                refusal,
                now: chrono::Utc::now(),
            }
        })
        .await
        .unwrap();
    let (status, problem) = app.order_with_key(&alice, "k-1", &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["type"], "/problems/too-many-unsettled-orders");
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["detail"], refusal.to_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_gives_the_stock_back_once_and_refunds_a_paid_order() {
    let app = App::start().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;

    let (unpaid, mug) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let (status, cancelled) = cancel(&app, &unpaid, &alice).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["paymentStatus"], "cancelled");
    released_once(&app, &unpaid, &mug).await;
    assert_eq!(app.available(&mug).await, 10);

    let (paid, cup) = confirmed_order(&app, &alice, &admin, "CUP-1").await;
    let (status, _) = settle(&app, &paid, Some(&admin), None, &payment("pi_9", "25.00")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refunded) = cancel(&app, &paid, &alice).await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "cancelled");
    assert_eq!(refunded["paymentStatus"], "refunded");
    let (status, again) = cancel(&app, &paid, &alice).await;
    assert_eq!((status, &again["paymentStatus"]), (StatusCode::OK, &json!("refunded")));
    assert_eq!(
        stream(&app, &paid).await,
        [
            "OrderPlaced",
            "OrderConfirmed",
            "PaymentSettled",
            "OrderCancelled",
            "PaymentRefunded"
        ],
        "cancelling again appends nothing"
    );
    released_once(&app, &paid, &cup).await;
    assert_eq!(app.available(&cup).await, 10);
    app.assert_stock_balances().await;
    app.stop().await;
}

/// The saga refuses the order past `MAX_UNSETTLED_ORDERS`: 429 at once (the
/// waiting request is woken by the refusal: with the wait set far past the
/// client's patience it would otherwise get no answer), nothing reserved;
/// paying an order frees a place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_unsettled_limit_an_order_is_refused_429_until_one_is_paid() {
    let mut config = App::config();
    config.saga.max_unsettled = 1;
    config.order_wait = std::time::Duration::from_secs(3600);
    config.http.request_timeout = std::time::Duration::from_secs(7200);
    let app = App::start_with(config).await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let (first, mug) = confirmed_order(&app, &alice, &admin, "MUG-1").await;
    let (status, problem) = app.order(&alice, &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["type"], "/problems/too-many-unsettled-orders");
    assert_eq!(
        problem["detail"],
        Refusal::TooManyUnsettledOrders { limit: 1 }.to_string()
    );
    assert_eq!(app.available(&mug).await, 8, "the refused order reserved nothing");

    let (status, _) = settle(&app, &first, Some(&admin), None, &payment("pi_1", "25.00")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, order) = app.order(&alice, &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "a paid order frees a place: {order}");
    app.stop().await;
}
