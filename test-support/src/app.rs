//! The command API with its saga on a free port, over a fresh embedded
//! store, driven by a real HTTP client; and what the log says about the
//! orders and stock it decided.

use std::collections::HashMap;
use std::sync::Arc;

use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use command_api::startup::{self, CommandApi};
use domain::decider::Decider;
use domain::event::DomainEvent;
use domain::order::{Order, OrderEvent, OrderState, OrderStatus};
use domain::product::{Product, ProductEvent, ProductState};
use event_store::{EventStore, Position, RecordedEvent, StreamFilter, StreamName};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{FaultyStore, PATIENCE, respond, wait_for};

/// A running command API. Dropping it stops it.
pub struct App {
    /// Its base URL, `http://127.0.0.1:{port}`.
    pub base: String,
    pub http: reqwest::Client,
    /// The store it appends to.
    pub store: Arc<dyn EventStore>,
    shutdown: CancellationToken,
    api: Option<CommandApi>,
    _folder: Arc<tempfile::TempDir>,
}

impl App {
    /// The administrator [`App::config`] configures: username and password.
    pub const ADMIN: (&str, &str) = ("admin", "admin-password");

    /// The password of every customer [`App::register`] registers.
    pub const CUSTOMER_PASSWORD: &str = "password-123";

    /// The defaults with a fresh signing key, the configured [`App::ADMIN`],
    /// and `POST /orders` waiting as long as the tests would for the saga's
    /// decision, so an order a test expects decided is not answered `202`
    /// because the machine is busy.
    pub fn config() -> Config {
        let mut config = Config::with_defaults(([127, 0, 0, 1], 0).into(), SigningKey::generate().unwrap());
        config.admin = Some((Self::ADMIN.0.to_owned(), Self::ADMIN.1.to_owned()));
        config.order_wait = PATIENCE;
        // Tests place many orders for one customer and pay none; a test of
        // `MAX_UNSETTLED_ORDERS` sets its own limit.
        config.saga.max_unsettled = Self::MAX_UNSETTLED;
        config
    }

    /// The most unpaid orders per customer [`App::config`] allows: more
    /// than any test that is not about the limit places.
    pub const MAX_UNSETTLED: u32 = 10_000;

    /// With [`App::config`], on a fresh store.
    pub async fn start() -> Self {
        Self::start_with(Self::config()).await
    }

    /// With `config`, on a fresh store.
    pub async fn start_with(config: Config) -> Self {
        Self::start_on(Arc::new(tempfile::tempdir().unwrap()), config).await
    }

    /// Starts on the store in `folder`, as a restarted process would.
    pub async fn start_on(folder: Arc<tempfile::TempDir>, config: Config) -> Self {
        let store = crate::embedded_store(folder.path());
        Self::serve(store, folder, config).await
    }

    /// With `config`, on a fresh store behind a [`FaultyStore`] the test
    /// switches faults on.
    pub async fn start_faulty(config: Config) -> (Self, Arc<FaultyStore>) {
        let folder = Arc::new(tempfile::tempdir().unwrap());
        let faulty = Arc::new(FaultyStore::new(crate::embedded_store(folder.path())));
        (Self::serve(faulty.clone(), folder, config).await, faulty)
    }

    async fn serve(store: Arc<dyn EventStore>, folder: Arc<tempfile::TempDir>, config: Config) -> Self {
        let shutdown = CancellationToken::new();
        let api = startup::start(Arc::clone(&store), config, shutdown.clone())
            .await
            .unwrap();
        Self {
            base: format!("http://{}", api.address),
            http: reqwest::Client::new(),
            store,
            shutdown,
            api: Some(api),
            _folder: folder,
        }
    }

    /// Stops it and waits until its server and saga have stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(api) = self.api.take() {
            api.stopped().await.unwrap();
        }
    }

    /// What stops it (and whatever else a test started beside it).
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The public key that verifies its tokens, as PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.api.as_ref().expect("the command API runs").public_key_pem
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        respond(with_token(self.http.post(self.url(path)).json(body), token)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        respond(with_token(self.http.put(self.url(path)).json(body), token)).await
    }

    /// Registers `username` (with the customers' password); the answer.
    pub async fn register(&self, username: &str) -> Value {
        let (status, body) = self
            .post(
                "/auth/register",
                None,
                &json!({"username": username, "password": Self::CUSTOMER_PASSWORD, "displayName": username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Logs in; the access token.
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

    /// Registers `username` and logs in; the access token.
    pub async fn customer(&self, username: &str) -> String {
        self.register(username).await;
        self.login(username, Self::CUSTOMER_PASSWORD).await
    }

    /// Logs [`App::ADMIN`] in; the access token.
    pub async fn admin(&self) -> String {
        self.login(Self::ADMIN.0, Self::ADMIN.1).await
    }

    /// Creates a product named `Product {sku}`; the answer.
    pub async fn create_product(&self, admin: &str, sku: &str, price: &str, stock: i64) -> Value {
        let (status, body) = self
            .post(
                "/products",
                Some(admin),
                &json!({"sku": sku, "name": format!("Product {sku}"), "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a product named `Product {sku}`; its id.
    pub async fn product(&self, admin: &str, sku: &str, price: &str, stock: i64) -> String {
        let created = self.create_product(admin, sku, price, stock).await;
        created["productId"].as_str().unwrap().to_owned()
    }

    /// `POST /orders` of `items` (product id, quantity) by `token`, to send
    /// as it is or with more headers.
    pub fn order_request(&self, token: &str, items: &[(&str, i64)]) -> RequestBuilder {
        self.http
            .post(self.url("/orders"))
            .bearer_auth(token)
            .json(&order_body(items))
    }

    pub async fn order(&self, token: &str, items: &[(&str, i64)]) -> (StatusCode, Value) {
        respond(self.order_request(token, items)).await
    }

    /// The order with an `Idempotency-Key`, as a future that borrows
    /// nothing: to send again, or at once from other tasks.
    pub fn order_with_key(
        &self,
        token: &str,
        key: &str,
        items: &[(&str, i64)],
    ) -> impl Future<Output = (StatusCode, Value)> + Send + use<> {
        respond(self.order_request(token, items).header("Idempotency-Key", key))
    }

    /// The position of the last event in the log.
    pub async fn head(&self) -> Position {
        self.store.head().await.unwrap().expect("the log is not empty")
    }

    /// Every event in the log, oldest first.
    pub async fn events(&self) -> Vec<RecordedEvent> {
        self.store
            .read_all(None, usize::MAX, &StreamFilter::all())
            .await
            .unwrap()
    }

    /// Every event in the log but the saga's checkpoints, oldest first: what
    /// requests and the saga decided. The saga saves its checkpoint on its
    /// own schedule, so a count that must not move leaves it out.
    pub async fn decisions(&self) -> Vec<RecordedEvent> {
        let mut events = self.events().await;
        events.retain(|e| e.stream != command_api::saga::CHECKPOINT_STREAM);
        events
    }

    /// Every event of an order's stream, oldest first.
    pub async fn order_stream(&self, order_id: &str) -> Vec<RecordedEvent> {
        event_store::read_whole_stream(self.store.as_ref(), &order_stream_name(order_id))
            .await
            .unwrap()
    }

    /// An order's state, folded from its stream in the log: what the command
    /// side decides the order's next step from.
    pub async fn order_state(&self, order_id: &str) -> OrderState {
        Order::fold(&decode_all(&self.order_stream(order_id).await))
    }

    /// An order's status, folded from its stream in the log.
    pub async fn order_status(&self, order_id: &str) -> OrderStatus {
        self.order_state(order_id)
            .await
            .status()
            .expect("the order is placed")
            .0
    }

    /// Waits until the order's status is `wanted`.
    pub async fn wait_for_status(&self, order_id: &str, wanted: OrderStatus) {
        crate::wait_for(&format!("order {order_id} reaching {wanted:?}"), || async move {
            match self.order_status(order_id).await {
                found if found == wanted => Ok(()),
                found => Err(format!("it is {found:?}")),
            }
        })
        .await;
    }

    /// A product's available stock, folded from its stream in the log.
    pub async fn available(&self, product_id: &str) -> u32 {
        let stream = event_store::read_whole_stream(self.store.as_ref(), &product_stream_name(product_id))
            .await
            .unwrap();
        match Product::fold(&decode_all(&stream)) {
            ProductState::Active(product) => product.available.get(),
            ProductState::NotCreated => panic!("no product {product_id}"),
        }
    }

    /// Whether every product's stock balances, read from the log: initial +
    /// restocked = available + units held by orders that are neither
    /// cancelled nor rejected. `Err` says where it does not.
    pub async fn stock_balances(&self) -> Result<(), String> {
        let mut books = StockBooks::default();
        for recorded in self.events().await {
            books.enter(&recorded);
        }
        books.balance()
    }

    /// Waits for the saga to settle: every product's stock balances.
    pub async fn assert_stock_balances(&self) {
        wait_for("the stock of every product balancing", || async move {
            self.stock_balances().await
        })
        .await;
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn decode_all<E: DomainEvent>(stream: &[RecordedEvent]) -> Vec<E> {
    stream
        .iter()
        .map(|e| E::decode(&e.event_type, e.metadata.schema_version, &e.data).unwrap())
        .collect()
}

/// The body of `POST /orders` for `items` (product id, quantity), with a
/// valid customer and shipping address.
pub fn order_body(items: &[(&str, i64)]) -> Value {
    json!({
        "items": items.iter().map(|(id, quantity)| json!({"productId": id, "quantity": quantity})).collect::<Vec<_>>(),
        "customer": {"name": "Alice", "email": "alice@example.com", "phone": "+66 81 234 5678"},
        "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "Thailand", "postalCode": "10110"},
    })
}

/// The stream of the order `order_id`.
pub fn order_stream_name(order_id: &str) -> StreamName {
    StreamName::new(OrderEvent::stream_name(order_id)).unwrap()
}

/// The stream of the product `product_id`.
pub fn product_stream_name(product_id: &str) -> StreamName {
    StreamName::new(ProductEvent::stream_name(product_id)).unwrap()
}

/// Each product's stock as the log tells it, for [`App::stock_balances`].
#[derive(Default)]
struct StockBooks {
    initial_and_restocked: HashMap<String, u64>,
    available: HashMap<String, u64>,
    /// Units held, by (product, order).
    held: HashMap<(String, String), u64>,
    /// Orders rejected or cancelled.
    ended: Vec<String>,
}

impl StockBooks {
    fn enter(&mut self, recorded: &RecordedEvent) {
        let version = recorded.metadata.schema_version;
        if ProductEvent::id_in_stream(&recorded.stream).is_some() {
            self.enter_product(ProductEvent::decode(&recorded.event_type, version, &recorded.data).unwrap());
        } else if OrderEvent::id_in_stream(&recorded.stream).is_some() {
            match OrderEvent::decode(&recorded.event_type, version, &recorded.data).unwrap() {
                OrderEvent::Rejected { order_id, .. } | OrderEvent::Cancelled { order_id, .. } => {
                    self.ended.push(order_id.to_string());
                }
                _ => {}
            }
        }
    }

    fn enter_product(&mut self, event: ProductEvent) {
        let product = event.product_id().to_string();
        let available = match event {
            ProductEvent::Created { available, .. } => {
                self.initial_and_restocked
                    .insert(product.clone(), u64::from(available.get()));
                available
            }
            ProductEvent::Restocked {
                quantity, available, ..
            } => {
                *self.initial_and_restocked.get_mut(&product).unwrap() += u64::from(quantity);
                available
            }
            ProductEvent::StockReserved {
                order_id,
                quantity,
                available,
                ..
            } => {
                self.held
                    .insert((product.clone(), order_id.to_string()), u64::from(quantity.get()));
                available
            }
            ProductEvent::StockReleased {
                order_id, available, ..
            } => {
                self.held.remove(&(product.clone(), order_id.to_string()));
                available
            }
            _ => return,
        };
        self.available.insert(product, u64::from(available.get()));
    }

    fn balance(&self) -> Result<(), String> {
        for (product, total) in &self.initial_and_restocked {
            let open_holds: u64 = self
                .held
                .iter()
                .filter(|((p, order), _)| p == product && !self.ended.contains(order))
                .map(|(_, units)| units)
                .sum();
            let available = self.available[product];
            if *total != available + open_holds {
                return Err(format!(
                    "product {product}: initial + restocked = {total}, available {available} + held by open orders {open_holds}"
                ));
            }
        }
        Ok(())
    }
}
