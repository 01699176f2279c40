//! A real command API on a free port, over a fresh embedded store, driven
//! by a real HTTP client.

#![allow(dead_code)]

pub mod crashing_store;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use command_api::startup::{self, CommandApi};
use domain::event::DomainEvent;
use domain::order::OrderEvent;
use domain::product::ProductEvent;
use event_store::{EventStore, StreamName};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn EventStore>,
    pub shutdown: CancellationToken,
    pub api: Option<CommandApi>,
    pub folder: Arc<tempfile::TempDir>,
}

/// How long the tests wait for something the system does on its own (the
/// saga deciding or releasing): generous, so a loaded machine only slows
/// the tests down.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The defaults, with the configured admin, and `POST /orders` waiting as
/// long as the tests would for the saga's decision, so an order a test
/// expects decided is not answered `202` because the machine is busy.
pub fn config() -> Config {
    let mut config = Config::with_defaults(([127, 0, 0, 1], 0).into(), SigningKey::generate().unwrap());
    config.admin = Some((ADMIN.0.to_owned(), ADMIN.1.to_owned()));
    config.order_wait = PATIENCE;
    config
}

/// Polls `check` every 20 ms until it answers `Ok`; after [`PATIENCE`]
/// fails saying what did not happen and what `check` last found.
pub async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> Result<(), String>) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let last = match check().await {
            Ok(()) => return,
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {PATIENCE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn start() -> App {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> App {
    let folder = Arc::new(tempfile::tempdir().unwrap());
    start_on(folder, config).await
}

/// Starts on the store in `folder`, as a restarted process would.
pub async fn start_on(folder: Arc<tempfile::TempDir>, config: Config) -> App {
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let shutdown = CancellationToken::new();
    let api = startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .unwrap();
    App {
        base: format!("http://{}", api.address),
        http: reqwest::Client::new(),
        store,
        shutdown,
        api: Some(api),
        folder,
    }
}

impl App {
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(api) = self.api.take() {
            api.stopped().await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        respond(request).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.put(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        respond(request).await
    }

    pub async fn register(&self, username: &str) -> Value {
        let (status, body) = self
            .post(
                "/auth/register",
                None,
                &json!({"username": username, "password": "password-123", "displayName": username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Registers `username` and logs in.
    pub async fn customer(&self, username: &str) -> String {
        self.register(username).await;
        self.login(username, "password-123").await
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN.0, ADMIN.1).await
    }

    /// Creates a product and returns its id.
    pub async fn product(&self, admin: &str, sku: &str, price: &str, stock: i64) -> String {
        let (status, body) = self
            .post(
                "/products",
                Some(admin),
                &json!({"sku": sku, "name": format!("Product {sku}"), "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["productId"].as_str().unwrap().to_owned()
    }

    pub async fn order(&self, token: &str, items: &[(&str, i64)]) -> (StatusCode, Value) {
        self.post("/orders", Some(token), &order_body(items)).await
    }

    /// Every event in the log but the saga's checkpoints, oldest first: what
    /// requests and the saga decided. The saga saves its checkpoint on its
    /// own schedule, so a count that must not move leaves it out.
    pub async fn decisions(&self) -> Vec<event_store::RecordedEvent> {
        let mut events = self.events().await;
        events.retain(|e| e.stream != command_api::saga::CHECKPOINT_STREAM);
        events
    }

    /// Every event in the log, oldest first.
    pub async fn events(&self) -> Vec<event_store::RecordedEvent> {
        self.store
            .read_all(None, usize::MAX, &event_store::StreamFilter::all())
            .await
            .unwrap()
    }
}

pub fn order_body(items: &[(&str, i64)]) -> Value {
    json!({
        "items": items.iter().map(|(id, quantity)| json!({"productId": id, "quantity": quantity})).collect::<Vec<_>>(),
        "customer": {"name": "Alice", "email": "alice@example.com", "phone": "+66 81 234 5678"},
        "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "Thailand", "postalCode": "10110"},
    })
}

/// Sends `request`; its answer may take up to the server's order wait
/// ([`PATIENCE`]), so the client waits twice that.
pub async fn respond(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = tokio::time::timeout(PATIENCE * 2, request.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {:?}", PATIENCE * 2))
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// An order's state, folded from its stream in the log: what the command
/// side decides the order's next step from.
pub async fn order_state(app: &App, order_id: &str) -> domain::order::OrderState {
    use domain::decider::Decider;
    let events: Vec<OrderEvent> = order_stream(app, order_id)
        .await
        .iter()
        .map(|e| OrderEvent::decode(&e.event_type, e.metadata.schema_version, &e.data).unwrap())
        .collect();
    domain::order::Order::fold(&events)
}

/// The stream of the order `order_id`.
pub fn order_stream_name(order_id: &str) -> StreamName {
    StreamName::new(OrderEvent::stream_name(order_id)).unwrap()
}

/// The stream of the product `product_id`.
pub fn product_stream_name(product_id: &str) -> StreamName {
    StreamName::new(ProductEvent::stream_name(product_id)).unwrap()
}

/// Every event of an order's stream, oldest first.
pub async fn order_stream(app: &App, order_id: &str) -> Vec<event_store::RecordedEvent> {
    event_store::read_whole_stream(app.store.as_ref(), &order_stream_name(order_id))
        .await
        .unwrap()
}

/// A product's available stock, folded from its stream in the log.
pub async fn available(app: &App, product_id: &str) -> u32 {
    use domain::decider::Decider;
    use domain::product::{Product, ProductState};
    let events: Vec<ProductEvent> =
        event_store::read_whole_stream(app.store.as_ref(), &product_stream_name(product_id))
            .await
            .unwrap()
            .iter()
            .map(|e| ProductEvent::decode(&e.event_type, e.metadata.schema_version, &e.data).unwrap())
            .collect();
    match Product::fold(&events) {
        ProductState::Active(product) => product.available.get(),
        ProductState::NotCreated => panic!("no product {product_id}"),
    }
}

/// For every product, read from the log: initial + restocked = available +
/// units held by orders that are neither cancelled nor rejected.
pub async fn stock_balances(app: &App) -> Result<(), String> {
    let mut initial_and_restocked: HashMap<String, u64> = HashMap::new();
    let mut available: HashMap<String, u64> = HashMap::new();
    let mut held: HashMap<(String, String), u64> = HashMap::new();
    let mut ended: Vec<String> = Vec::new();
    for recorded in app.events().await {
        let version = recorded.metadata.schema_version;
        if ProductEvent::id_in_stream(&recorded.stream).is_some() {
            let event = ProductEvent::decode(&recorded.event_type, version, &recorded.data).unwrap();
            let product = event.product_id().to_string();
            match event {
                ProductEvent::Created { available: units, .. } => {
                    initial_and_restocked.insert(product.clone(), u64::from(units.get()));
                    available.insert(product, u64::from(units.get()));
                }
                ProductEvent::Restocked {
                    quantity, available: a, ..
                } => {
                    *initial_and_restocked.get_mut(&product).unwrap() += u64::from(quantity);
                    available.insert(product, u64::from(a.get()));
                }
                ProductEvent::StockReserved {
                    order_id,
                    quantity,
                    available: a,
                    ..
                } => {
                    held.insert((product.clone(), order_id.to_string()), u64::from(quantity.get()));
                    available.insert(product, u64::from(a.get()));
                }
                ProductEvent::StockReleased {
                    order_id, available: a, ..
                } => {
                    held.remove(&(product.clone(), order_id.to_string()));
                    available.insert(product, u64::from(a.get()));
                }
                _ => {}
            }
        } else if OrderEvent::id_in_stream(&recorded.stream).is_some() {
            match OrderEvent::decode(&recorded.event_type, version, &recorded.data).unwrap() {
                OrderEvent::Rejected { order_id, .. } | OrderEvent::Cancelled { order_id, .. } => {
                    ended.push(order_id.to_string());
                }
                _ => {}
            }
        }
    }
    for (product, total) in initial_and_restocked {
        let open_holds: u64 = held
            .iter()
            .filter(|((p, order), _)| *p == product && !ended.contains(order))
            .map(|(_, units)| units)
            .sum();
        if total != available[&product] + open_holds {
            return Err(format!(
                "product {product}: initial + restocked = {total}, available {} + held by open orders {open_holds}",
                available[&product]
            ));
        }
    }
    Ok(())
}

/// Waits for the saga to settle: every product's stock balances.
pub async fn assert_stock_balances(app: &App) {
    wait_for("the stock of every product balancing", async || {
        stock_balances(app).await
    })
    .await;
}
