//! The projectors' admin API over real HTTP: status against the log head,
//! replays by admins only (expired, foreign-key and HS256 tokens refused),
//! one at a time, a failed one leaving the old rows, and its failure answers
//! as problem+json.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::Value;
use test_support::projectors_admin::AdminServer;
use test_support::{Shop, tokens};

/// The admin API over a shop's log, with the projections running: all
/// stopped when it is dropped, with the shop.
struct Admin {
    shop: Shop,
    server: AdminServer,
    _projections: projectors::supervisor::Running,
}

async fn start() -> Admin {
    let shop = Shop::start().await;
    let server = AdminServer::start(&shop.app).await;
    let projections = projectors::supervisor::start(
        Arc::clone(&shop.app.store),
        server.db.clone(),
        Default::default(),
        shop.app.shutdown(),
    );
    Admin {
        shop,
        server,
        _projections: projections,
    }
}

impl Admin {
    /// `GET /projections` as an admin, who sees every field.
    async fn status(&self) -> Value {
        let response = self
            .shop
            .app
            .http
            .get(format!("{}/projections", self.server.base))
            .bearer_auth(&self.shop.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn replay(&self, name: &str, token: Option<&str>) -> (u16, String, Value) {
        let mut request = self
            .shop
            .app
            .http
            .post(format!("{}/projections/{name}/replay", self.server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.json().await.unwrap())
    }

    /// Polls the status until `done` says so; the status then.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let done = &done;
        test_support::wait_for(what, || async move {
            let status = self.status().await;
            if done(&status) {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        })
        .await
    }

    async fn assert_nothing_replayed(&self) {
        let status = self.status().await;
        assert!(
            status["projections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["replay"].is_null()),
            "nothing was replayed: {status}"
        );
    }
}

fn projection<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

fn all_caught_up(status: &Value) -> bool {
    status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["caughtUp"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_shows_each_projection_against_the_head_of_the_log() {
    let admin = start().await;
    admin.shop.trade(0).await;
    let head = admin.shop.app.head().await.to_string();
    let status = admin
        .wait_for("every projection caught up", |s| {
            s["head"] == head.as_str() && all_caught_up(s)
        })
        .await;
    let names: Vec<&str> = status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["catalog", "users", "orders"]);
    assert_eq!(projection(&status, "orders")["position"], head.as_str());
    assert!(projection(&status, "orders")["replay"].is_null(), "{status}");
    let holders: Vec<&str> = status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["heldBy"].as_str().expect("every projection is held"))
        .collect();
    assert!(
        holders.windows(2).all(|pair| pair[0] == pair[1]),
        "one instance runs all three: {holders:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replays_a_projection_and_sees_it_done() {
    let admin = start().await;
    admin.shop.trade(0).await;
    let head = admin.shop.app.head().await.to_string();
    admin.wait_for("every projection caught up", all_caught_up).await;

    let (status, _, body) = admin.replay("orders", Some(&admin.shop.admin)).await;
    assert_eq!(status, 202, "{body}");
    assert!(["running", "done"].contains(&body["phase"].as_str().unwrap()), "{body}");
    let status = admin
        .wait_for("the replay done", |s| {
            projection(s, "orders")["replay"]["phase"] == "done"
        })
        .await;
    assert_eq!(projection(&status, "orders")["replay"]["reached"], head.as_str());
    assert_eq!(projection(&status, "orders")["position"], head.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replay_of_the_same_projection_waits_for_the_first() {
    let admin = start().await;
    admin.shop.trade(0).await;
    admin.wait_for("every projection caught up", all_caught_up).await;
    // Hold the views' write lock so that the first replay cannot finish yet.
    let blocker = projectors::database::begin_write(&admin.server.db).await.unwrap();
    let (first, _, body) = admin.replay("catalog", Some(&admin.shop.admin)).await;
    assert_eq!(first, 202, "{body}");
    let (second, content_type, problem) = admin.replay("catalog", Some(&admin.shop.admin)).await;
    assert_eq!(second, 409, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("catalog"), "{problem}");
    let (other, _, body) = admin.replay("users", Some(&admin.shop.admin)).await;
    assert_eq!(other, 202, "another projection may replay meanwhile: {body}");
    blocker.rollback().await.unwrap();
    admin
        .wait_for("both replays done", |s| {
            projection(s, "catalog")["replay"]["phase"] == "done" && projection(s, "users")["replay"]["phase"] == "done"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_replay_and_only_projections_that_exist() {
    let admin = start().await;
    let customer = admin.shop.app.customer("carol").await;
    for (token, expected) in [(None, 401), (Some(customer.as_str()), 403), (Some("not-a-token"), 401)] {
        let (status, content_type, problem) = admin.replay("orders", token).await;
        assert_eq!(status, expected, "{problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["status"], expected);
    }
    let (status, content_type, problem) = admin.replay("inventory", Some(&admin.shop.admin)).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(
        problem["detail"].as_str().unwrap().contains("catalog, users, orders"),
        "{problem}"
    );
    admin.assert_nothing_replayed().await;
}

/// Tokens that carry the claims of the admin who logged in but are each
/// wrong in one way ([`tokens::mint`]: expired, signed with a foreign
/// Ed25519 key, HS256 keyed with the public key, unsigned) are refused and
/// replay nothing; the same claims signed right replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_foreign_and_hs256_tokens_are_refused_and_replay_nothing() {
    let admin = start().await;
    let minted = tokens::mint(&admin.shop.admin);
    let mut failures = Vec::new();
    for forged in &minted.forged {
        let response = admin
            .shop
            .app
            .http
            .post(format!("{}/projections/orders/replay", admin.server.base))
            .bearer_auth(&forged.token)
            .send()
            .await
            .unwrap();
        if let Err(answer) = tokens::refused(response).await {
            failures.push(format!("a token {}: {answer}", forged.what));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    admin.assert_nothing_replayed().await;
    let (accepted, _, body) = admin.replay("orders", Some(&minted.control)).await;
    assert_eq!(accepted, 202, "the same claims signed right: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_fails_says_why_and_leaves_the_old_rows() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
    use views::tables::{order_lines, orders};

    let admin = start().await;
    admin.shop.trade(0).await;
    admin.wait_for("every projection caught up", all_caught_up).await;
    // A status no event sets: a replay that changed anything would take it away.
    let marked = orders::Entity::find().one(&admin.server.db).await.unwrap().unwrap();
    orders::Entity::update_many()
        .col_expr(orders::Column::Status, Expr::value("marked by the test"))
        .filter(orders::Column::OrderId.eq(marked.order_id))
        .exec(&admin.server.db)
        .await
        .unwrap();
    let orders_before = orders::Entity::find().all(&admin.server.db).await.unwrap();
    let lines_before = order_lines::Entity::find().all(&admin.server.db).await.unwrap();
    // The views refuse the rebuilt generation's first batch (an event the
    // replay cannot read is no failure: it is parked, `tests/quarantine.rs`).
    admin
        .server
        .db
        .execute_unprepared(
            "CREATE TRIGGER refuse_orders BEFORE INSERT ON checkpoints WHEN NEW.projection = 'orders__next' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();

    let (status, _, body) = admin.replay("orders", Some(&admin.shop.admin)).await;
    assert_eq!(status, 202, "{body}");
    let status = admin
        .wait_for("the replay failed", |s| {
            projection(s, "orders")["replay"]["phase"] == "failed"
        })
        .await;
    let error = projection(&status, "orders")["replay"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("refused by the test"), "{error}");
    let orders_after = orders::Entity::find().all(&admin.server.db).await.unwrap();
    assert_eq!(orders_after, orders_before, "the failed replay changed nothing");
    assert!(
        orders_after.iter().any(|order| order.status == "marked by the test"),
        "{orders_after:#?}"
    );
    let lines_after = order_lines::Entity::find().all(&admin.server.db).await.unwrap();
    assert_eq!(lines_after, lines_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_views_database() {
    let admin = start().await;
    let get = |path: &'static str| {
        let (http, base) = (admin.shop.app.http.clone(), admin.server.base.clone());
        async move {
            let response = http.get(format!("{base}{path}")).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/health/live").await, (200, "ok".to_owned()));
    assert_eq!(get("/health/ready").await, (200, "ready".to_owned()));
    admin.server.db.clone().close().await.unwrap();
    let (status, reason) = get("/health/ready").await;
    assert_eq!(status, 503);
    assert!(reason.starts_with("views database unavailable"), "{reason}");
    assert_eq!(get("/health/live").await.0, 200, "still alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_operation_and_events_by_projection() {
    let admin = start().await;
    admin.shop.trade(0).await;
    admin.wait_for("every projection caught up", all_caught_up).await;
    admin.replay("inventory", Some(&admin.shop.admin)).await;
    let response = admin
        .shop
        .app
        .http
        .get(format!("{}/metrics", admin.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "the Prometheus text format"
    );
    let text = response.text().await.unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    let listed =
        line(r#"http_requests_total{service="projectors",operation="listProjections",method="GET",status="200"}"#);
    assert_ne!(listed.rsplit(' ').next(), Some("0"), "{listed}");
    line(r#"http_requests_total{service="projectors",operation="replayProjection",method="POST",status="404"}"#);
    line(
        r#"http_request_duration_seconds_bucket{service="projectors",operation="listProjections",method="GET",le="0.005"}"#,
    );
    let events: u64 = line(r#"projector_events_total{projection="orders"}"#)
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(events > 0);
    line(r#"projector_checkpoint_commit_position{projection="catalog"}"#);
}
