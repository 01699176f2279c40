//! The whole system end to end over real HTTP, with SQLite views and with
//! Postgres views.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::system::{Settings, System};
use test_support::{PATIENCE, order_body, product_stream_name, tokens, wait_for};

/// The system, signing with the key the tests can sign with, waiting
/// [`PATIENCE`] for reads and orders, so a loaded machine slows the tests
/// down instead of failing them.
async fn start(views_url: &str) -> System {
    test_support::system::start_with(
        views_url,
        Settings {
            signing_key: tokens::server_key(),
            order_wait: Some(PATIENCE),
            read_wait: PATIENCE,
        },
    )
    .await
}

/// A mug from the admin and alice's confirmed order of one: the admin's
/// token, alice's, and the order's id and position.
async fn alices_order(system: &System) -> (String, String, String, String) {
    let admin = system.app.admin().await;
    let mug = system.app.product(&admin, "MUG-1", "1.00", 5).await;
    let (alice, _) = system.customer("alice").await;
    let (status, order) = system.command("/orders", Some(&alice), order_body(&[(&mug, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let text = |field: &str| order[field].as_str().unwrap().to_owned();
    (admin, alice, text("orderId"), text("position"))
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (url, _keep) = test_support::sqlite_views();
                    super::$case(&url).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = test_support::postgres::fresh_database().await;
                    super::$case(&url).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_customer_orders_reads_it_back_cancels_and_the_stock_returns,
    nobody_reads_another_customers_order,
    bad_reads_get_problems_naming_the_field,
    an_unreachable_position_gets_503_with_retry_after,
    expired_foreign_key_and_hs256_tokens_get_401_and_read_nothing,
    products_page_by_cursor_and_by_offset_in_sku_order,
);

async fn products_page_by_cursor_and_by_offset_in_sku_order(views_url: &str) {
    let system = start(views_url).await;
    let admin = system.app.admin().await;
    let mut last = String::new();
    for sku in ["E-5", "A-1", "C-3", "B-2", "D-4"] {
        let created = system.app.create_product(&admin, sku, "1.00", 1).await;
        last = created["position"].as_str().unwrap().to_owned();
    }
    let mut seen = Vec::new();
    let mut path = format!("/products?limit=2&minPosition={last}");
    loop {
        let (status, page) = system.query(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/products?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["A-1", "B-2", "C-3", "D-4", "E-5"]);
    let (_, page) = system.query("/products?limit=2&offset=3", None).await;
    let skus: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].clone())
        .collect();
    assert_eq!(skus, [json!("D-4"), json!("E-5")]);
    let (_, filtered) = system.query("/products?sku=c-3", None).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
}

async fn a_customer_orders_reads_it_back_cancels_and_the_stock_returns(views_url: &str) {
    let system = start(views_url).await;
    let admin = system.app.admin().await;
    let (status, created) = system
        .command(
            "/products",
            Some(&admin),
            json!({"sku": "MUG-1", "name": "Blue mug", "price": "12.50", "stock": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mug = created["productId"].as_str().unwrap();
    let (alice, registered_at) = system.customer("alice").await;

    let (status, me) = system
        .query(&format!("/me?minPosition={registered_at}"), Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "alice");
    assert!(me.get("passwordHash").is_none());

    let (status, page) = system
        .query(
            &format!(
                "/products?name=mug&minPosition={}",
                created["position"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["sku"], "MUG-1");

    let (status, order) = system.command("/orders", Some(&alice), order_body(&[(mug, 3)])).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (order_id, position) = (order["orderId"].as_str().unwrap(), order["position"].as_str().unwrap());

    let (status, detail) = system
        .query(&format!("/orders/{order_id}?minPosition={position}"), Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["status"], "confirmed");
    assert_eq!(detail["paymentStatus"], "arranged");
    assert_eq!(detail["total"], "37.50");
    assert_eq!(detail["lines"][0]["unitPrice"], "12.50");

    let (status, mine) = system
        .query(&format!("/me/orders?minPosition={position}"), Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["items"][0]["orderId"], order_id);

    let (status, product) = system
        .query(&format!("/products/{mug}?minPosition={position}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(product["available"], 7);

    let (status, cancelled) = system
        .command(
            &format!("/orders/{order_id}/cancel"),
            Some(&alice),
            json!({"reason": "too blue"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let (status, detail) = system
        .query(
            &format!(
                "/orders/{order_id}?minPosition={}",
                cancelled["position"].as_str().unwrap()
            ),
            Some(&alice),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["status"], "cancelled");
    assert_eq!(detail["paymentStatus"], "cancelled");
    let system = &system;
    let released = wait_for("the saga's release of the cancelled order's stock", || async move {
        let events = event_store::read_whole_stream(system.app.store.as_ref(), &product_stream_name(mug))
            .await
            .unwrap();
        events
            .iter()
            .find(|e| {
                e.event_type == "StockReleased"
                    && serde_json::from_slice::<Value>(&e.data).unwrap()["orderId"] == order_id
            })
            .map(|e| e.position)
            .ok_or_else(|| format!("the product's stream has {} events, no release", events.len()))
    })
    .await;
    let (status, product) = system
        .query(&format!("/products/{mug}?minPosition={released}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(
        product["available"], 10,
        "the stock came back, read at the release's position {released}: {product}"
    );
}

async fn nobody_reads_another_customers_order(views_url: &str) {
    let system = start(views_url).await;
    let (admin, alice, order_id, position) = alices_order(&system).await;
    let (bob, _) = system.customer("bob").await;
    let path = format!("/orders/{order_id}?minPosition={position}");
    let (status, body) = system.query(&path, Some(&bob)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = system.query(&path, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = system.query(&path, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "admins read any order");
    let (status, mine) = system.query("/me/orders", Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["items"].as_array().unwrap().len(), 0);
    let (status, _) = system.query(&path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn bad_reads_get_problems_naming_the_field(views_url: &str) {
    let system = start(views_url).await;
    let (alice, _) = system.customer("alice").await;
    let cases = [
        ("/products?limit=0", "limit", StatusCode::BAD_REQUEST),
        ("/products?limit=101", "limit", StatusCode::BAD_REQUEST),
        ("/products?offset=-1", "offset", StatusCode::BAD_REQUEST),
        ("/products?cursor=%%%", "cursor", StatusCode::BAD_REQUEST),
        ("/products?sku=has%20space", "sku", StatusCode::BAD_REQUEST),
        ("/products?minPosition=abc", "minPosition", StatusCode::BAD_REQUEST),
        ("/products/not-a-uuid", "id", StatusCode::BAD_REQUEST),
        ("/orders/42", "id", StatusCode::BAD_REQUEST),
        ("/me/orders?cursor=bm9wZQ", "cursor", StatusCode::BAD_REQUEST),
    ];
    for (path, field, expected) in cases {
        let (status, body) = system.query(path, Some(&alice)).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    let (status, body) = system.query(&format!("/products/{}", uuid::Uuid::new_v4()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let response = system.query_request("/products").send().await.unwrap();
    assert!(response.headers().contains_key("x-position"));
}

/// A position the log will never reach is answered 503 once the read wait
/// is over; the wait is short here, as nothing is to happen within it.
async fn an_unreachable_position_gets_503_with_retry_after(views_url: &str) {
    let system = test_support::system::start_with(
        views_url,
        Settings {
            read_wait: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let response = system
        .query_request("/products?minPosition=999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

/// Tokens the command API did not sign, signed with another algorithm, or
/// expired, read nothing: `GET /me` and `GET /orders/{id}` answer 401
/// problem+json with `WWW-Authenticate: Bearer` and nothing of the user's.
/// Each carries the claims of a token the command API issued (the order's
/// customer's, and an admin's, who may read any order), and the same claims
/// signed right read both: what is refused is the one thing wrong.
async fn expired_foreign_key_and_hs256_tokens_get_401_and_read_nothing(views_url: &str) {
    let system = start(views_url).await;
    let (admin, alice, order_id, position) = alices_order(&system).await;
    let order_id = order_id.as_str();
    let (alice, admin) = (tokens::mint(&alice), tokens::mint(&admin));
    let me = format!("/me?minPosition={position}");
    let detail = format!("/orders/{order_id}?minPosition={position}");
    let reads = [
        (&alice, &me, "username", json!("alice")),
        (&alice, &detail, "orderId", json!(order_id)),
        (&admin, &me, "username", json!("admin")),
        (&admin, &detail, "orderId", json!(order_id)),
    ];
    let mut failures = Vec::new();
    for (minted, path, _, _) in &reads {
        for forged in &minted.forged {
            let response = system
                .query_request(path)
                .bearer_auth(&forged.token)
                .send()
                .await
                .unwrap();
            match tokens::refused(response).await {
                Ok(problem) if problem.to_string().contains("alice") || problem.to_string().contains(order_id) => {
                    failures.push(format!(
                        "GET {path} with a token {}: the problem tells {problem}",
                        forged.what
                    ));
                }
                Ok(_) => {}
                Err(answer) => failures.push(format!("GET {path} with a token {}: {answer}", forged.what)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (minted, path, key, expected) in &reads {
        let (status, body) = system.query(path, Some(&minted.control)).await;
        assert_eq!(status, StatusCode::OK, "GET {path} with the control token: {body}");
        assert_eq!(body[*key], *expected, "GET {path} with the control token: {body}");
    }
}
