//! Poison events (issue #11, point 2), over real HTTP and a real store: an
//! event a projection cannot read is tried `POISON_ATTEMPTS` times, then
//! parked, and the projection goes on past it; admins list, retry and skip
//! parked events; the metrics count them; readiness goes 503 while an event
//! is being retried or a projection lags, and back to 200; an outage parks
//! nothing; a replay parks what it cannot read and finishes.
//!
//! Each test parks under a projection of its own: catalog, orders, users.
//! The metrics are the process's, and every projector that starts sets its
//! projections' gauges from its own database, so the tests of this file run
//! one at a time (`ONE_AT_A_TIME`, taken once, in `start`).

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use api_common::verifier::Verifier;
use command_api::auth::tokens::{SigningKey, Tokens};
use domain::account::{AccountEvent, DisplayName, PasswordHash, Role, Username};
use domain::event::DomainEvent;
use domain::ids::{ProductId, UserId};
use domain::money::Price;
use domain::product::{ProductEvent, ProductName, Sku};
use domain::quantity::StockLevel;
use event_store::{EventStore, ExpectedRevision, NewEvent, Position, StreamName};
use projectors::admin::{Operations, Projectors};
use projectors::generations::pace::Pace;
use projectors::instance::Instance;
use projectors::quarantine::Quarantine;
use projectors::runner::ProjectorOptions;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use test_support::wait_for;
use tokio_util::sync::CancellationToken;
use views::tables::{parked_events, products, users};

/// Held by the harness of the test running: another test's projectors
/// would set the parked-events gauges this one reads.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The admin API over a store and views of its own, with the projections
/// running unless a test says otherwise; all stopped when dropped.
struct Harness {
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    base: String,
    http: reqwest::Client,
    admin: String,
    customer: String,
    instance: Arc<Instance>,
    running: Option<projectors::supervisor::Running>,
    shutdown: CancellationToken,
    _folder: tempfile::TempDir,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Setup {
    views_url: Option<String>,
    quarantine: Quarantine,
    lag_limit: Duration,
    run_projections: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            views_url: None,
            quarantine: Quarantine {
                attempts: 3,
                pause: Duration::from_millis(300),
            },
            lag_limit: Duration::from_secs(30),
            run_projections: true,
        }
    }
}

async fn start(setup: Setup) -> Harness {
    let alone = ONE_AT_A_TIME.lock().await;
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let views_url = setup
        .views_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display()));
    // Two connections for each projection (its batches and its lease's
    // renewals both write, so both wait while a test holds the write
    // lock), one for that test and one for the readiness probe's ping:
    // with fewer, the writers waiting for the lock take every connection
    // and the probe times out.
    let connections = 2 * u32::try_from(projectors::all().len()).unwrap() + 2;
    let db = projectors::database::connect_and_migrate(&views_url, connections)
        .await
        .unwrap();
    let key = SigningKey::generate().unwrap();
    let instance = Arc::new(Instance::new(setup.lag_limit));
    let shutdown = CancellationToken::new();
    let projectors = Projectors {
        store: Arc::clone(&store),
        db: db.clone(),
        operations: Arc::new(Operations::new(setup.quarantine, Pace::FULL)),
        instance: Arc::clone(&instance),
    };
    let verifier = Verifier::from_pem(&key.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap();
    let api = projectors::admin::start(
        projectors,
        verifier,
        ([127, 0, 0, 1], 0).into(),
        Default::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let running = setup.run_projections.then(|| {
        let options = ProjectorOptions {
            quarantine: setup.quarantine,
            ..Default::default()
        };
        projectors::supervisor::start_in(&instance, Arc::clone(&store), db.clone(), options, shutdown.clone())
    });
    let tokens = Tokens::new(key, "shop".to_owned(), "shop".to_owned(), Duration::from_secs(600));
    let token = |role| tokens.issue(uuid::Uuid::new_v4(), role, 1, chrono::Utc::now()).unwrap();
    Harness {
        store,
        db,
        base: format!("http://{}", api.address),
        http: reqwest::Client::new(),
        admin: token(Role::Admin),
        customer: token(Role::Customer),
        instance,
        running,
        shutdown,
        _folder: folder,
        _alone: alone,
    }
}

/// A product created, readable by this build.
fn product_created(sku: &str) -> (StreamName, NewEvent) {
    let sku = Sku::parse(sku).unwrap();
    let id = ProductId::for_sku(&sku);
    let encoded = ProductEvent::Created {
        product_id: id,
        sku,
        name: ProductName::parse("Lamp").unwrap(),
        price: Price::from_minor_units(1_250).unwrap(),
        available: StockLevel::parse_field("stock", 5).unwrap(),
        at: chrono::Utc::now(),
    }
    .encode()
    .unwrap();
    let event = test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data);
    (test_support::product_stream_name(&id.to_string()), event)
}

/// A product created by a newer build, at a schema version this one does
/// not read (a rolling deploy).
fn product_from_the_future() -> (StreamName, NewEvent) {
    let (stream, mut event) = product_created("FUTURE-1");
    event.metadata.schema_version = 2;
    (stream, event)
}

/// An account registered, readable by this build.
fn account_registered(name: &str) -> (StreamName, NewEvent) {
    let username = Username::parse(name).unwrap();
    let user_id = UserId::for_username(&username);
    let encoded = AccountEvent::Registered {
        user_id,
        username,
        display_name: DisplayName::parse("Ada").unwrap(),
        password_hash: PasswordHash::from_phc("$argon2id$secret".to_owned()),
        role: Role::Customer,
        at: chrono::Utc::now(),
    }
    .encode()
    .unwrap();
    let stream = StreamName::new(AccountEvent::stream_name(user_id)).unwrap();
    let event = test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data);
    (stream, event)
}

impl Harness {
    async fn append(&self, (stream, event): (StreamName, NewEvent)) -> Position {
        let appended = self
            .store
            .append(&stream, ExpectedRevision::Any, vec![event])
            .await
            .unwrap();
        appended.position
    }

    /// `GET path` with `token`: status, content type, body.
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    async fn post(&self, path: &str, token: Option<&str>) -> (u16, String, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    /// The parked events, as an admin sees them.
    async fn parked(&self) -> Vec<Value> {
        let (status, _, body) = self.get("/projections/parked", Some(&self.admin)).await;
        assert_eq!(status, 200, "{body}");
        body["parked"].as_array().unwrap().clone()
    }

    /// Waits until `/health/ready` answers `status` with a body `check`
    /// accepts; the body then.
    async fn ready_becomes(&self, status: u16, check: impl Fn(&str) -> bool) -> String {
        let check = &check;
        wait_for(&format!("readiness {status}"), || async move {
            let (got, _, body) = self.get("/health/ready", None).await;
            let body = body.as_str().map_or_else(|| body.to_string(), str::to_owned);
            if got == status && check(&body) {
                Ok(body)
            } else {
                Err(format!("{got}: {body}"))
            }
        })
        .await
    }

    /// Waits until `projection` has applied the log up to `position`.
    async fn reaches(&self, projection: &str, position: Position) {
        let mut progress = self.running.as_ref().unwrap().progress[projection].clone();
        tokio::time::timeout(test_support::PATIENCE, progress.wait_for(|p| *p >= Some(position)))
            .await
            .unwrap_or_else(|_| panic!("{projection} did not reach {position}"))
            .unwrap();
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, String, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
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

/// The value of the metric line `series` (name and labels), if rendered.
fn metric(series: &str) -> Option<f64> {
    let text = api_common::metrics::handle().render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_parked_after_its_attempts_and_the_projection_goes_on() {
    let shop = start(Setup::default()).await;
    shop.append(product_created("BEFORE-1")).await;
    let poison = shop.append(product_from_the_future()).await;
    let after = shop.append(product_created("AFTER-1")).await;

    let stalled = shop.ready_becomes(503, |body| body.contains("catalog")).await;
    assert!(
        stalled.contains("stalled") && stalled.contains(&poison.to_string()),
        "{stalled}"
    );
    shop.reaches("catalog", after).await;
    let parked = shop.parked().await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let event = &parked[0];
    assert_eq!(event["subscriber"], "catalog");
    assert_eq!(event["position"], poison.to_string().as_str());
    assert_eq!(event["eventType"], "ProductCreated");
    assert!(event["stream"].as_str().unwrap().starts_with("product-"), "{event}");
    assert_eq!(event["attempts"], 3, "parked after POISON_ATTEMPTS: {event}");
    assert_eq!(event["parkedBy"], shop.instance.id());
    assert!(event["error"].as_str().unwrap().contains("schema version 2"), "{event}");
    assert_eq!(
        products::Entity::find().count(&shop.db).await.unwrap(),
        2,
        "the events before and after it are applied"
    );
    shop.ready_becomes(200, |_| true).await;
    assert_eq!(metric(r#"parked_events_total{subscriber="catalog"}"#), Some(1.0));
    assert_eq!(metric(r#"parked_events{subscriber="catalog"}"#), Some(1.0));

    let at = format!("/projections/parked/catalog/{poison}");
    let (status, content_type, problem) = shop.post(&format!("{at}/retry"), Some(&shop.admin)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (409, "application/problem+json"),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("schema version 2"),
        "{problem}"
    );
    assert_eq!(
        shop.parked().await[0]["attempts"],
        4,
        "the record stays, one attempt more"
    );

    for (token, expected) in [(None, 401), (Some(shop.customer.as_str()), 403)] {
        for path in ["/projections/parked".to_owned(), format!("{at}/skip")] {
            let (status, _, problem) = if path.ends_with("skip") {
                shop.post(&path, token).await
            } else {
                shop.get(&path, token).await
            };
            assert_eq!(status, expected, "{path}: {problem}");
        }
    }
    let (status, _, body) = shop.post(&format!("{at}/skip"), Some(&shop.admin)).await;
    assert_eq!(status, 204, "{body}");
    assert!(shop.parked().await.is_empty());
    assert_eq!(metric(r#"parked_events{subscriber="catalog"}"#), Some(0.0));
    assert_eq!(metric(r#"parked_events_total{subscriber="catalog"}"#), Some(1.0));
    for path in [
        format!("{at}/skip"),
        format!("{at}/retry"),
        "/projections/parked/catalog/not-a-position/skip".to_owned(),
        format!("/projections/parked/nothing/{poison}/retry"),
    ] {
        let (status, content_type, problem) = shop.post(&path, Some(&shop.admin)).await;
        assert_eq!(
            (status, content_type.as_str()),
            (404, "application/problem+json"),
            "{path}: {problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_applies_an_event_the_code_now_reads() {
    let shop = start(Setup {
        run_projections: false,
        ..Setup::default()
    })
    .await;
    let (stream, event) = account_registered("ada");
    let id = event.id;
    let position = shop.append((stream.clone(), event)).await;
    // Parked as a build that could not read it would have parked it.
    let recorded = shop.store.read_stream(&stream, 0, 1).await.unwrap().remove(0);
    let parking = projectors::parked::Parking {
        subscriber: "users",
        event: &recorded,
        error: "event \"AccountRegistered\" has schema version 2".to_owned(),
        parked_by: "an-older-build",
        attempts: 3,
        parked_at: chrono::Utc::now(),
    };
    assert!(projectors::parked::park(&shop.db, parking).await.unwrap());
    assert_eq!(recorded.id, id);

    let (status, _, body) = shop
        .post(
            &format!("/projections/parked/users/{position}/retry"),
            Some(&shop.admin),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(shop.parked().await.is_empty(), "its record is gone");
    let user = users::Entity::find().one(&shop.db).await.unwrap().unwrap();
    assert_eq!(user.username, "ada", "the event was applied");
    assert_eq!(metric(r#"parked_events{subscriber="users"}"#), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_parks_what_it_cannot_read_and_finishes() {
    let shop = start(Setup {
        run_projections: false,
        quarantine: Quarantine {
            attempts: 2,
            pause: Duration::from_millis(50),
        },
        ..Setup::default()
    })
    .await;
    let order = test_support::order_stream_name(&uuid::Uuid::new_v4().to_string());
    let malformed = test_support::new_event("OrderPlaced", 1, serde_json::to_vec(&json!({"oops": true})).unwrap());
    let poison = shop.append((order, malformed)).await;
    let head = shop.append(product_created("LATER-1")).await;

    for round in 0..2 {
        let (status, _, body) = shop.post("/projections/orders/replay", Some(&shop.admin)).await;
        assert_eq!(status, 202, "{body}");
        let status = wait_for("the replay done", || async {
            let (_, _, body) = shop.get("/projections", Some(&shop.admin)).await;
            let orders = body["projections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "orders")
                .unwrap()
                .clone();
            match orders["replay"]["phase"].as_str() {
                Some("done") => Ok(orders),
                _ => Err(orders.to_string()),
            }
        })
        .await;
        assert_eq!(status["position"], head.to_string().as_str(), "round {round}: {status}");
        let parked = shop.parked().await;
        assert_eq!(parked.len(), 1, "parked once, in round {round}: {parked:?}");
        assert_eq!(parked[0]["subscriber"], "orders");
        assert_eq!(parked[0]["position"], poison.to_string().as_str());
        assert_eq!(parked[0]["attempts"], 2);
        assert!(parked[0]["error"].as_str().unwrap().contains("malformed"), "{parked:?}");
    }
    // Each replay builds a generation of its own, which parks the event
    // again (under `orders__next`); its record then becomes the live one's.
    assert_eq!(metric(r#"parked_events_total{subscriber="orders__next"}"#), Some(2.0));
    assert_eq!(metric(r#"parked_events{subscriber="orders"}"#), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_lagging_past_the_limit_makes_the_instance_unready() {
    let shop = start(Setup {
        lag_limit: Duration::from_millis(300),
        ..Setup::default()
    })
    .await;
    let first = shop.append(product_created("LAG-1")).await;
    shop.reaches("catalog", first).await;
    shop.ready_becomes(200, |_| true).await;
    // The views' write lock held: the projections wait (SQLite waits up to
    // 5 s before it fails a write), so they fall behind without failing.
    let blocker = projectors::database::begin_write(&shop.db).await.unwrap();
    let later = shop.append(product_created("LAG-2")).await;
    // Behind from the first look, for no time yet: ready; behind for
    // longer than the limit from then: lagging.
    let (status, _, body) = shop.get("/health/ready", None).await;
    assert_eq!(status, 200, "{body}");
    let lagging = shop.ready_becomes(503, |body| body.contains("lagging")).await;
    assert!(lagging.contains("limit 300 ms"), "{lagging}");
    blocker.rollback().await.unwrap();
    shop.reaches("catalog", later).await;
    shop.ready_becomes(200, |_| true).await;
    assert!(shop.parked().await.is_empty());
}

/// An instance that starts on a new views database, behind a log older
/// than the limit, has been behind for no time: it is ready while it
/// catches up, and lagging only once it stays behind past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_just_started_behind_an_old_log_is_ready() {
    let url = test_support::postgres::fresh_database().await;
    let mut shop = start(Setup {
        views_url: Some(url.clone()),
        lag_limit: Duration::from_millis(300),
        run_projections: false,
        ..Setup::default()
    })
    .await;
    shop.append(product_created("OLD-1")).await;
    let head = shop.append(product_created("OLD-2")).await;
    // Not synchronisation: the log must be older than the limit.
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The catalog's table locked (Postgres waits for a lock without a
    // limit): the catalog stays behind, without failing, while the leases
    // and the other projections go on.
    let locker = sea_orm::Database::connect(&url).await.unwrap();
    let lock = sea_orm::TransactionTrait::begin(&locker).await.unwrap();
    lock.execute_unprepared("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let options = ProjectorOptions {
        quarantine: Setup::default().quarantine,
        ..Default::default()
    };
    shop.running = Some(projectors::supervisor::start_in(
        &shop.instance,
        Arc::clone(&shop.store),
        shop.db.clone(),
        options,
        shop.shutdown.clone(),
    ));
    let catalog = shop
        .instance
        .subscribers()
        .into_iter()
        .find(|subscriber| subscriber.name() == "catalog")
        .unwrap();
    wait_for("the catalog held and behind", || async {
        match catalog.state().held && catalog.applied() < Some(head) {
            true => Ok(()),
            false => Err(format!("{:?} at {:?}", catalog.state(), catalog.applied())),
        }
    })
    .await;
    let (status, _, body) = shop.get("/health/ready", None).await;
    assert_eq!(status, 200, "just started, behind an old log: {body}");
    let lagging = shop.ready_becomes(503, |body| body.contains("lagging")).await;
    assert!(lagging.contains("projection catalog"), "{lagging}");
    lock.rollback().await.unwrap();
    shop.reaches("catalog", head).await;
    shop.ready_becomes(200, |_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_of_the_views_database_park_nothing() {
    let url = test_support::postgres::fresh_database().await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    let shop = start(Setup {
        views_url: Some(url),
        quarantine: Quarantine {
            attempts: 1,
            pause: Duration::from_millis(100),
        },
        lag_limit: Duration::from_millis(500),
        ..Setup::default()
    })
    .await;
    let first = shop.append(product_created("OUT-1")).await;
    shop.reaches("catalog", first).await;
    let server = sea_orm::Database::connect(test_support::postgres::database_url("postgres"))
        .await
        .unwrap();
    server
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let during = [
        shop.append(product_created("OUT-2")).await,
        shop.append(product_created("OUT-3")).await,
    ];
    let unready = shop.ready_becomes(503, |_| true).await;
    assert!(unready.contains("views database unavailable"), "{unready}");
    // The outage lasts a while: a few dozen failed attempts at least.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server
        .execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    shop.reaches("catalog", during[1]).await;
    assert_eq!(products::Entity::find().count(&shop.db).await.unwrap(), 3);
    shop.ready_becomes(200, |_| true).await;

    // Then the database answers but refuses the catalog's writes (its
    // table gone for a while): failed writes, no poison either.
    shop.db
        .execute_unprepared("ALTER TABLE products RENAME TO products_away")
        .await
        .unwrap();
    let refused = shop.append(product_created("OUT-4")).await;
    let lagging = shop.ready_becomes(503, |body| body.contains("lagging")).await;
    assert!(lagging.contains("catalog"), "{lagging}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    shop.db
        .execute_unprepared("ALTER TABLE products_away RENAME TO products")
        .await
        .unwrap();
    shop.reaches("catalog", refused).await;
    assert_eq!(products::Entity::find().count(&shop.db).await.unwrap(), 4);
    assert_eq!(parked_events::Entity::find().count(&shop.db).await.unwrap(), 0);
    assert!(shop.parked().await.is_empty());
    shop.ready_becomes(200, |_| true).await;
}
