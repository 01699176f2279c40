//! `GET /projections` is public, but which instance runs each projection
//! and why a replay failed (host names, process ids, database errors) are
//! shown only to admins: anonymous callers, customers and tokens that do
//! not verify get the same answer without them.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sea_orm::ConnectionTrait;
use serde_json::Value;
use test_support::projectors_admin::AdminServer;
use test_support::{Shop, wait_for};

/// `GET /projections` with `token`, if any.
async fn status(shop: &Shop, server: &AdminServer, token: Option<&str>) -> Value {
    let mut request = shop.app.http.get(format!("{}/projections", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn orders(status: &Value) -> &Value {
    status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "orders")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_the_instances_and_the_replay_errors() {
    let shop = Shop::start().await;
    let server = AdminServer::start(&shop.app).await;
    let _projections = projectors::supervisor::start(
        Arc::clone(&shop.app.store),
        server.db.clone(),
        Default::default(),
        shop.app.shutdown(),
    );
    // A table of the orders projection gone: its replay fails. (An event
    // it cannot read would not: it is parked, `tests/quarantine.rs`.)
    server
        .db
        .execute_unprepared("ALTER TABLE order_lines RENAME TO order_lines_away")
        .await
        .unwrap();
    let replay = shop
        .app
        .http
        .post(format!("{}/projections/orders/replay", server.base))
        .bearer_auth(&shop.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 202);
    let full = wait_for("the replay failed, and a lease held", || async {
        let full = status(&shop, &server, Some(&shop.admin)).await;
        let held = full["projections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["heldBy"].is_string());
        match (orders(&full)["replay"]["error"].is_string(), held) {
            (true, true) => Ok(full),
            _ => Err(full.to_string()),
        }
    })
    .await;

    let customer = shop.app.customer("curious").await;
    for (who, token) in [
        ("anonymous", None),
        ("a customer", Some(customer.as_str())),
        ("a token that does not verify", Some("not.a.token")),
    ] {
        let seen = status(&shop, &server, token).await;
        for projection in seen["projections"].as_array().unwrap() {
            assert!(projection["heldBy"].is_null(), "{who} sees {projection}");
        }
        let replay = &orders(&seen)["replay"];
        assert_eq!(replay["phase"], "failed", "{who}: {seen}");
        assert_eq!(replay["at"], orders(&full)["replay"]["at"], "{who}: {seen}");
        assert!(replay["error"].is_null(), "{who} sees {replay}");
        assert!(seen["head"].is_string(), "{who}: {seen}");
    }
}
