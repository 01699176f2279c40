//! The whole system end to end over real HTTP, with SQLite views and with
//! Postgres views.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::StatusCode;
use serde_json::json;

async fn sqlite_views() -> (String, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    (url, folder)
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (url, _keep) = super::sqlite_views().await;
                    super::$case(super::support::start(&url).await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = super::support::postgres::fresh_database().await;
                    super::$case(super::support::start(&url).await).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_customer_orders_reads_it_back_cancels_and_the_stock_returns,
    nobody_reads_another_customers_order,
    bad_reads_get_problems_and_an_unreachable_position_gets_503,
    products_page_by_cursor_and_by_offset_in_sku_order,
);

async fn products_page_by_cursor_and_by_offset_in_sku_order(system: support::System) {
    let admin = system.login("admin", "admin-password").await;
    let mut last = String::new();
    for sku in ["E-5", "A-1", "C-3", "B-2", "D-4"] {
        let (status, created) = system
            .command(
                "/products",
                Some(&admin),
                json!({"sku": sku, "name": format!("Item {sku}"), "price": "1.00", "stock": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
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

async fn a_customer_orders_reads_it_back_cancels_and_the_stock_returns(system: support::System) {
    let admin = system.login("admin", "admin-password").await;
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

    let (status, order) = system
        .command(
            "/orders",
            Some(&alice),
            json!({
                "items": [{"productId": mug, "quantity": 3}],
                "customer": {"name": "Alice", "phone": "0812345678"},
                "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
            }),
        )
        .await;
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
    assert_eq!(detail["paymentStatus"], "refunded");
    // The release is the saga's, just after the cancellation.
    let mut available = 0;
    for _ in 0..100 {
        let (_, product) = system.query(&format!("/products/{mug}"), None).await;
        available = product["available"].as_i64().unwrap();
        if available == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(available, 10, "the stock came back");
}

async fn nobody_reads_another_customers_order(system: support::System) {
    let admin = system.login("admin", "admin-password").await;
    let (_, created) = system
        .command(
            "/products",
            Some(&admin),
            json!({"sku": "MUG-1", "name": "Mug", "price": "1.00", "stock": 5}),
        )
        .await;
    let (alice, _) = system.customer("alice").await;
    let (bob, _) = system.customer("bob").await;
    let (_, order) = system
        .command(
            "/orders",
            Some(&alice),
            json!({
                "items": [{"productId": created["productId"], "quantity": 1}],
                "customer": {"phone": "0812345678"},
                "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
            }),
        )
        .await;
    let path = format!(
        "/orders/{}?minPosition={}",
        order["orderId"].as_str().unwrap(),
        order["position"].as_str().unwrap()
    );
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

async fn bad_reads_get_problems_and_an_unreachable_position_gets_503(system: support::System) {
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

    let response = system
        .http
        .get(format!("{}/products?minPosition=999999999", system.queries))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    let response = system
        .http
        .get(format!("{}/products", system.queries))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-position"));
}
