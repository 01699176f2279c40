//! A real command API with its saga over a fresh embedded store, to produce
//! a realistic event log through real requests.

use std::sync::Arc;
use std::time::Duration;

use command_api::auth::tokens::SigningKey;
use command_api::config::Config;
use event_store::{EventStore, Position};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub struct Shop {
    pub store: Arc<dyn EventStore>,
    base: String,
    http: reqwest::Client,
    /// An admin's access token.
    pub admin: String,
    /// The key that verifies the command API's tokens.
    pub public_key_pem: String,
    shutdown: CancellationToken,
    _folder: tempfile::TempDir,
}

pub async fn start() -> Shop {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let mut config = Config::with_defaults(([127, 0, 0, 1], 0).into(), SigningKey::generate().unwrap());
    config.admin = Some(("admin".to_owned(), "admin-password".to_owned()));
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
    /// cancelled orders, a restock, a rename and a reprice.
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
            self.post("/orders", &token, order(vec![(2, 50)])).await;
            let cancelled = self.post("/orders", &token, order(vec![(2, 1)])).await;
            assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
            let id = cancelled["orderId"].as_str().unwrap();
            self.post(
                &format!("/orders/{id}/cancel"),
                &token,
                json!({"reason": "changed my mind"}),
            )
            .await;
        }
        self.post(
            &format!("/products/{}/restock", products[0]),
            &self.admin,
            json!({"quantity": 3}),
        )
        .await;
        self.http
            .put(format!("{}/products/{}/name", self.base, products[1]))
            .bearer_auth(&self.admin)
            .json(&json!({"name": "Renamed"}))
            .send()
            .await
            .unwrap();
        // Let the saga release what the cancellations freed.
        tokio::time::sleep(Duration::from_millis(200)).await;
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
