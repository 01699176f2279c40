//! The admin API's blue/green generations over real HTTP, on SQLite and on
//! Postgres: a rebuild begun by another instance shows its phase, events
//! done, pace and time left (paused between two batches), then built, and
//! a rebuild through the API takes it up, verifies it and promotes it; a
//! corrupted live row is found by a verification through the API (its
//! rows shown to admins only), promotion waits for acceptance and repairs
//! it, rollback brings the live rows back, and dropping the previous
//! generation leaves nothing to roll back to; admins only, unknown names
//! 404, one operation at a time per projection.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use projectors::generations::Slot;
use projectors::generations::pace::Pace;
use projectors::generations::rebuild::Rebuilder;
use projectors::runner::ProjectorOptions;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};
use test_support::Shop;
use test_support::projectors_admin::AdminServer;
use views::tables::products;

/// Each test on a fresh SQLite file and on a fresh Postgres database.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let (url, _folder) = test_support::sqlite_views();
                    super::$test(&url).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let url = test_support::postgres::fresh_database().await;
                    super::$test(&url).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_rebuild_shows_its_progress_and_the_api_resumes_and_promotes_it,
    a_drifted_row_is_verified_promoted_with_acceptance_rolled_back_and_dropped,
    operations_are_for_admins_on_projections_that_exist_one_at_a_time,
);

/// The admin API over a shop's log that has traded once, with the
/// projections running and caught up.
struct Admin {
    shop: Shop,
    server: AdminServer,
    _projections: projectors::supervisor::Running,
}

async fn start(views_url: &str) -> Admin {
    let shop = Shop::start().await;
    shop.trade(0).await;
    let server = AdminServer::start_on(&shop.app, views_url).await;
    let projections = projectors::supervisor::start(
        Arc::clone(&shop.app.store),
        server.db.clone(),
        Default::default(),
        shop.app.shutdown(),
    );
    let admin = Admin {
        shop,
        server,
        _projections: projections,
    };
    let head = admin.head().await;
    admin
        .wait_for("every projection at the head", |s| {
            s["projections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["position"] == head.as_str())
        })
        .await;
    admin
}

impl Admin {
    async fn head(&self) -> String {
        self.shop.app.head().await.to_string()
    }

    /// `method path` with `token` and a JSON `body`: the status, the
    /// content type and the body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let mut request = self
            .shop
            .app
            .http
            .request(method, format!("{}{path}", self.server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        (
            status,
            content_type,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST path` as the admin.
    async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(reqwest::Method::POST, path, Some(&self.shop.admin), body)
            .await;
        (status, body)
    }

    /// `GET /projections` with `token`.
    async fn status_as(&self, token: Option<&str>) -> Value {
        let (status, _, body) = self.send(reqwest::Method::GET, "/projections", token, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `name`'s entry in `GET /projections`, as an admin.
    async fn projection(&self, name: &str) -> Value {
        projection(&self.status_as(Some(&self.shop.admin)).await, name)
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let done = &done;
        test_support::wait_for(what, || async move {
            let status = self.status_as(Some(&self.shop.admin)).await;
            if done(&status) {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        })
        .await
    }

    /// Waits for `name`'s last operation to end; its entry then.
    async fn operation_ended(&self, name: &str) -> Value {
        let status = self
            .wait_for(&format!("the operation on {name} ended"), |s| {
                ["done", "failed"].contains(&projection(s, name)["operation"]["phase"].as_str().unwrap_or(""))
            })
            .await;
        projection(&status, name)
    }

    fn rebuilder(&self, name: &str, batch_size: usize) -> Rebuilder {
        Rebuilder {
            store: Arc::clone(&self.shop.app.store),
            db: self.server.db.clone(),
            projection: projectors::named(name).unwrap(),
            options: ProjectorOptions {
                batch_size,
                ..Default::default()
            },
            parked_by: "admin-generations-test".to_owned(),
            pace: Pace::FULL,
        }
    }
}

fn projection(status: &Value, name: &str) -> Value {
    status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone()
}

async fn a_rebuild_shows_its_progress_and_the_api_resumes_and_promotes_it(url: &str) {
    let admin = start(url).await;
    // A longer log: paused after its first batch, the rebuild is far from
    // the head.
    for round in 1..4 {
        admin.shop.trade(round).await;
    }
    let head = admin.shop.app.head().await;
    admin
        .wait_for("every projection at the head", |s| {
            s["projections"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["position"] == head.to_string().as_str())
        })
        .await;
    assert!(
        admin.projection("orders").await["generations"]
            .as_object()
            .unwrap()
            .is_empty()
    );

    // Another instance begins a rebuild, one event a batch, busy a tenth of
    // the time: at full pace its 126 batches took 156 ms once, and were all
    // done before the pause below could be taken.
    let mut elsewhere = admin.rebuilder("orders", 1);
    elsewhere.pace = Pace::busy_percent(10).unwrap();
    elsewhere.begin().await.unwrap();
    let begun = admin.projection("orders").await;
    assert_eq!(begun["generations"]["next"]["phase"], "building", "{begun}");
    assert_eq!(begun["generations"]["next"]["eventsDone"], 0, "{begun}");
    assert!(
        begun["generations"]["next"]["etaSeconds"].is_null(),
        "unknown before a batch: {begun}"
    );
    let building = tokio::spawn({
        let elsewhere = elsewhere.clone();
        async move { elsewhere.catch_up(Slot::Next).await }
    });
    let db = admin.server.db.clone();
    test_support::wait_for("the rebuild's first batch", || async {
        match views::checkpoint::load(&db, "orders__next").await.unwrap() {
            Some(at) => Ok(at),
            None => Err("no batch yet".to_owned()),
        }
    })
    .await;
    // Holding the next generation's lock pauses it between two batches.
    let pause = projectors::database::begin_write(&db).await.unwrap();
    projectors::database::lock_projection(&pause, "orders__next")
        .await
        .unwrap();
    let paused = admin.projection("orders").await;
    let next = &paused["generations"]["next"];
    let at = views::checkpoint::load(&db, "orders__next").await.unwrap().unwrap();
    assert!(at < head, "paused before the head: {paused}");
    assert_eq!(next["phase"], "building", "{paused}");
    assert_eq!(next["version"], 1);
    assert_eq!(next["position"], at.to_string().as_str(), "{paused}");
    assert!(next["eventsDone"].as_u64().unwrap() > 0, "{paused}");
    assert!(next["eventsPerSecond"].as_f64().unwrap() > 0.0, "{paused}");
    assert!(next["etaSeconds"].as_f64().unwrap() > 0.0, "{paused}");
    assert!(next["builtAt"].is_null() && next["verification"].is_null(), "{paused}");
    pause.rollback().await.unwrap();
    assert_eq!(building.await.unwrap().unwrap(), Some(head));
    let built = admin.projection("orders").await;
    let next = &built["generations"]["next"];
    assert_eq!(next["phase"], "built", "{built}");
    assert_eq!(next["etaSeconds"], 0.0, "{built}");
    assert_eq!(next["position"], head.to_string().as_str(), "{built}");
    assert!(next["builtAt"].is_string(), "{built}");

    // The API's rebuild resumes it, verifies it clean and promotes it.
    let (status, started) = admin.post("/projections/orders/rebuild", None).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["kind"], "rebuild");
    let done = admin.operation_ended("orders").await;
    assert_eq!(done["operation"]["phase"], "done", "{done}");
    assert_eq!(done["operation"]["reached"], head.to_string().as_str(), "{done}");
    assert!(done["replay"].is_null(), "a rebuild is no replay: {done}");
    assert!(done["generations"]["next"].is_null(), "promoted: {done}");
    let previous = &done["generations"]["previous"];
    assert_eq!(previous["version"], 1, "{done}");
    assert_eq!(previous["position"], head.to_string().as_str(), "{done}");
    assert_eq!(done["position"], head.to_string().as_str(), "{done}");
    let live = projectors::generations::record::of(&db, "orders", Slot::Live)
        .await
        .unwrap()
        .unwrap();
    let events = admin.shop.app.events().await.len() as i64;
    assert_eq!(live.events_done, events, "each event applied once");
}

async fn a_drifted_row_is_verified_promoted_with_acceptance_rolled_back_and_dropped(url: &str) {
    let admin = start(url).await;
    let customer = admin.shop.app.customer("drift-customer").await;
    let head = admin.head().await;
    let db = &admin.server.db;
    let rows = products::Entity::find().all(db).await.unwrap();
    let drifted = &rows[0];
    db.execute_unprepared(&format!(
        "UPDATE products SET available = -7 WHERE sku = '{}'",
        drifted.sku
    ))
    .await
    .unwrap();

    let (status, started) = admin.post("/projections/catalog/verify", None).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(
        (&started["kind"], &started["phase"]),
        (&json!("verify"), &json!("running"))
    );
    let verified = admin.operation_ended("catalog").await;
    assert_eq!(verified["operation"]["phase"], "done", "{verified}");
    assert_eq!(verified["operation"]["differences"], 1, "{verified}");
    let next = &verified["generations"]["next"];
    assert_eq!(next["phase"], "differs", "{verified}");
    assert_eq!(next["etaSeconds"], 0.0, "built: {verified}");
    let verification = &next["verification"];
    assert_eq!(verification["differences"], 1);
    assert_eq!(verification["comparedWith"], "live");
    assert_eq!(verification["position"], head.as_str());
    let first = &verification["first"][0];
    assert_eq!(first["table"], "products", "{verified}");
    assert_eq!(first["columns"], json!(["available"]), "{verified}");
    assert_eq!(first["comparedRow"]["available"], -7, "{verified}");
    for token in [Some(customer.as_str()), None] {
        let seen = projection(&admin.status_as(token).await, "catalog");
        let verification = &seen["generations"]["next"]["verification"];
        assert_eq!(verification["differences"], 1, "{seen}");
        assert!(verification["first"].is_null(), "rows for admins only: {seen}");
    }
    let metrics = admin.send(reqwest::Method::GET, "/metrics", None, None).await.2;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(r#"projection_verify_differences{projection="catalog",generation="next"} 1"#),
        "{metrics}"
    );

    for body in [None, Some(json!({})), Some(json!({"acceptDifferences": false}))] {
        let (status, problem) = admin.post("/projections/catalog/promote", body.clone()).await;
        assert_eq!(status, 409, "{body:?}: {problem}");
        assert_eq!(problem["type"], "/problems/generation-differs", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("in 1 rows"), "{problem}");
    }
    let available = |db: sea_orm::DatabaseConnection, id| async move {
        products::Entity::find_by_id(id)
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .available
    };
    assert_eq!(
        available(db.clone(), drifted.product_id).await,
        -7,
        "refused: nothing changed"
    );
    let (status, promoted) = admin
        .post("/projections/catalog/promote", Some(json!({"acceptDifferences": true})))
        .await;
    assert_eq!((status, &promoted), (StatusCode::OK, &json!({"position": head})));
    assert_eq!(
        available(db.clone(), drifted.product_id).await,
        drifted.available,
        "repaired"
    );

    let (status, rolled_back) = admin.post("/projections/catalog/rollback", None).await;
    assert_eq!((status, &rolled_back), (StatusCode::OK, &json!({"position": head})));
    assert_eq!(
        available(db.clone(), drifted.product_id).await,
        -7,
        "the drifted rows are back"
    );
    let (status, _) = admin.post("/projections/catalog/rollback", None).await;
    assert_eq!(status, 200);
    assert_eq!(available(db.clone(), drifted.product_id).await, drifted.available);

    let drop_generation = |generation: &'static str| {
        let path = format!("/projections/catalog/generations/{generation}");
        let token = admin.shop.admin.clone();
        let admin = &admin;
        async move { admin.send(reqwest::Method::DELETE, &path, Some(&token), None).await }
    };
    let (status, _, body) = drop_generation("previous").await;
    assert_eq!(status, 204, "{body}");
    let (status, content_type, problem) = drop_generation("previous").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    assert!(problem["detail"].as_str().unwrap().contains("previous"), "{problem}");
    for path in ["/projections/catalog/rollback", "/projections/catalog/promote"] {
        let (status, problem) = admin.post(path, None).await;
        assert_eq!(status, 404, "{path}: {problem}");
    }
    let gone = admin.projection("catalog").await;
    assert!(gone["generations"].as_object().unwrap().is_empty(), "{gone}");
}

async fn operations_are_for_admins_on_projections_that_exist_one_at_a_time(url: &str) {
    let admin = start(url).await;
    let customer = admin.shop.app.customer("not-an-admin").await;
    let operations = [
        (reqwest::Method::POST, "rebuild"),
        (reqwest::Method::POST, "verify"),
        (reqwest::Method::POST, "promote"),
        (reqwest::Method::POST, "rollback"),
        (reqwest::Method::DELETE, "generations/next"),
    ];
    for (method, operation) in &operations {
        for (token, expected) in [(None, 401), (Some(customer.as_str()), 403), (Some("not-a-token"), 401)] {
            let path = format!("/projections/catalog/{operation}");
            let (status, content_type, problem) = admin.send(method.clone(), &path, token, None).await;
            assert_eq!(status, expected, "{operation} with {token:?}: {problem}");
            assert_eq!(content_type, "application/problem+json", "{operation}");
        }
        let path = format!("/projections/inventory/{operation}");
        let (status, _, problem) = admin.send(method.clone(), &path, Some(&admin.shop.admin), None).await;
        assert_eq!(status, 404, "{operation}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("catalog, users, orders"),
            "{problem}"
        );
    }
    let (status, _, problem) = admin
        .send(
            reqwest::Method::DELETE,
            "/projections/catalog/generations/live",
            Some(&admin.shop.admin),
            None,
        )
        .await;
    assert_eq!(status, 404, "the live generation is never dropped: {problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("next and previous"),
        "{problem}"
    );
    let (status, problem) = admin
        .post(
            "/projections/catalog/promote",
            Some(json!({"acceptDifferences": "yes"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "acceptDifferences", "{problem}");
    admin_sees_nothing_started(&admin).await;

    // Hold the next generation's lock: the rebuild of the catalog waits.
    let blocker = projectors::database::begin_write(&admin.server.db).await.unwrap();
    projectors::database::lock_projection(&blocker, "catalog__next")
        .await
        .unwrap();
    let (status, started) = admin.post("/projections/catalog/rebuild", None).await;
    assert_eq!(status, 202, "{started}");
    for (method, operation) in &operations {
        let path = format!("/projections/catalog/{operation}");
        let (status, _, problem) = admin.send(method.clone(), &path, Some(&admin.shop.admin), None).await;
        assert_eq!(status, 409, "{operation} while the rebuild runs: {problem}");
        assert_eq!(problem["type"], "/problems/operation-running", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("rebuild of catalog"),
            "{problem}"
        );
    }
    let (status, problem) = admin.post("/projections/catalog/replay", None).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/replay-running", "{problem}");
    let (status, other) = admin.post("/projections/users/verify", None).await;
    assert_eq!(status, 202, "another projection meanwhile: {other}");
    blocker.rollback().await.unwrap();
    for name in ["catalog", "users"] {
        let ended = admin.operation_ended(name).await;
        assert_eq!(ended["operation"]["phase"], "done", "{ended}");
    }
    let (status, again) = admin.post("/projections/catalog/verify", None).await;
    assert_eq!(status, 202, "free again once the rebuild ended: {again}");
    admin.operation_ended("catalog").await;
}

/// Nothing refused started an operation or a generation.
async fn admin_sees_nothing_started(admin: &Admin) {
    let status = admin.status_as(Some(&admin.shop.admin)).await;
    for projection in status["projections"].as_array().unwrap() {
        assert!(projection["operation"].is_null(), "{status}");
        assert!(projection["generations"].as_object().unwrap().is_empty(), "{status}");
    }
}
