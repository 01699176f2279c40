//! A real command API with its saga over a fresh embedded store, to produce
//! a realistic event log through real requests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use domain::order::OrderEvent;
use domain::product::ProductEvent;
use event_store::{EventStore, Position, StreamFilter};
use projectors::projection::decode_all;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub struct Shop {
    pub store: Arc<dyn EventStore>,
    base: String,
    http: reqwest::Client,
    /// An admin's access token.
    pub admin: String,
    /// The key the command API signs its tokens with.
    pub signing_key: SigningKey,
    /// The key that verifies the command API's tokens.
    pub public_key_pem: String,
    shutdown: CancellationToken,
    _folder: tempfile::TempDir,
}

pub async fn start() -> Shop {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let signing_key = SigningKey::generate().unwrap();
    let mut config = Config::with_defaults(([127, 0, 0, 1], 0).into(), signing_key.clone());
    config.admin = Some(("admin".to_owned(), "admin-password".to_owned()));
    // A loaded machine still gets the saga's decision, not a 202.
    config.order_wait = Duration::from_secs(30);
    // The saga saves its progress only when it stops: saved while it runs,
    // its checkpoint would land in the log whenever a second had passed,
    // after the head a test compares with.
    config.saga.checkpoint_every = Duration::MAX;
    let shutdown = CancellationToken::new();
    let api = command_api::startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", api.address);
    let http = reqwest::Client::new();
    let admin = login(&http, &base, "admin", "admin-password").await;
    Shop {
        store,
        base,
        http,
        admin,
        signing_key,
        public_key_pem: api.public_key_pem,
        shutdown,
        _folder: folder,
    }
}

async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let answer: serde_json::Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["accessToken"].as_str().unwrap().to_owned()
}

impl Shop {
    /// Registers a customer and returns its access token.
    pub async fn customer(&self, username: &str) -> String {
        self.http
            .post(format!("{}/auth/register", self.base))
            .json(&json!({"username": username, "password": "password-123", "displayName": username}))
            .send()
            .await
            .unwrap();
        login(&self.http, &self.base, username, "password-123").await
    }

    async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// One round of business: products, customers, confirmed, rejected and
    /// cancelled orders, a restock and a rename. Returns once the saga has
    /// finished with every order, so the log stays as it is until the next
    /// request.
    pub async fn trade(&self, round: usize) {
        let mut products = Vec::new();
        for n in 0..3 {
            let created = self
                .post(
                    "/products",
                    &self.admin,
                    json!({"sku": format!("R{round}-{n}"), "name": format!("Thing {round}.{n}"), "price": format!("{}.50", n + 1), "stock": 5}),
                )
                .await;
            products.push(created["productId"].as_str().unwrap().to_owned());
        }
        for customer in 0..2 {
            let token = self.customer(&format!("r{round}c{customer}")).await;
            let order = |items: Vec<(usize, i64)>| {
                json!({
                    "items": items.iter().map(|(p, q)| json!({"productId": products[*p], "quantity": q})).collect::<Vec<_>>(),
                    "customer": {"name": "Customer", "phone": "0812345678"},
                    "shipping": {"address": "1 Main St", "city": "Bangkok", "state": "Bangkok", "country": "TH", "postalCode": "10110"},
                })
            };
            let confirmed = self.post("/orders", &token, order(vec![(0, 1), (1, 2)])).await;
            assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
            let rejected = self.post("/orders", &token, order(vec![(2, 50)])).await;
            assert_eq!(rejected["status"], "rejected", "{rejected}");
            let to_cancel = self.post("/orders", &token, order(vec![(2, 1)])).await;
            assert_eq!(to_cancel["status"], "confirmed", "{to_cancel}");
            let id = to_cancel["orderId"].as_str().unwrap();
            let cancelled = self
                .post(
                    &format!("/orders/{id}/cancel"),
                    &token,
                    json!({"reason": "changed my mind"}),
                )
                .await;
            assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
        }
        let restocked = self
            .post(
                &format!("/products/{}/restock", products[0]),
                &self.admin,
                json!({"quantity": 3}),
            )
            .await;
        assert!(restocked["position"].is_string(), "{restocked}");
        let renamed = self
            .http
            .put(format!("{}/products/{}/name", self.base, products[1]))
            .bearer_auth(&self.admin)
            .json(&json!({"name": "Renamed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200);
        self.saga_done().await;
    }

    /// Waits until the saga has nothing left to do: every order placed is
    /// confirmed or rejected, and the stock reserved for every order
    /// rejected or cancelled is released.
    pub async fn saga_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let unfinished = self.unfinished().await;
            if unfinished.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the saga did not finish within 30 s: {unfinished:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What the saga has still to do, by the log.
    async fn unfinished(&self) -> Vec<String> {
        let log = self
            .store
            .read_all(None, usize::MAX, &StreamFilter::all())
            .await
            .unwrap();
        let (mut placed, mut decided, mut ended) = (HashSet::new(), HashSet::new(), HashSet::new());
        for event in decode_all::<OrderEvent>(&log).unwrap() {
            let order = event.order_id();
            match event {
                OrderEvent::Placed { .. } => placed.insert(order),
                OrderEvent::Confirmed { .. } => decided.insert(order),
                OrderEvent::Rejected { .. } => decided.insert(order) && ended.insert(order),
                OrderEvent::Cancelled { .. } => ended.insert(order),
            };
        }
        let (mut reserved, mut released) = (HashSet::new(), HashSet::new());
        for event in decode_all::<ProductEvent>(&log).unwrap() {
            match event {
                ProductEvent::StockReserved {
                    order_id, product_id, ..
                } => reserved.insert((order_id, product_id)),
                ProductEvent::StockReleased {
                    order_id, product_id, ..
                } => released.insert((order_id, product_id)),
                _ => false,
            };
        }
        let undecided = placed
            .difference(&decided)
            .map(|order| format!("order {order} undecided"));
        let unreleased = reserved
            .iter()
            .filter(|(order, _)| ended.contains(order))
            .filter(|reservation| !released.contains(reservation))
            .map(|(order, product)| format!("stock of product {product} still held for order {order}"));
        undecided.chain(unreleased).collect()
    }

    pub async fn head(&self) -> Position {
        self.store.head().await.unwrap().unwrap()
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
