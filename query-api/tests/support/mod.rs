//! The whole system in this process, on free ports: command API and saga
//! over an embedded store, projectors into the given views database, and
//! the query API over it.

#![allow(dead_code)]

#[path = "../../../projectors/tests/support/postgres.rs"]
pub mod postgres;

use std::sync::Arc;
use std::time::Duration;

use api_common::verifier::Verifier;
use command_api::auth::tokens::SigningKey;
use event_store::EventStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct System {
    pub commands: String,
    pub queries: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn EventStore>,
    shutdown: CancellationToken,
    _folder: tempfile::TempDir,
}

/// What a test may choose about the system it starts.
pub struct Settings {
    /// The command API's signing key.
    pub signing_key: SigningKey,
    /// How long `POST /orders` waits for the saga's decision; `None`: the
    /// command API's default.
    pub order_wait: Option<Duration>,
    /// How long a read waits for the views to reach its `minPosition`.
    pub read_wait: Duration,
}

impl Default for Settings {
    /// A fresh key, the command API's default order wait, a 2 s read wait.
    fn default() -> Self {
        Self {
            signing_key: SigningKey::generate().unwrap(),
            order_wait: None,
            read_wait: Duration::from_secs(2),
        }
    }
}

pub async fn start(views_url: &str) -> System {
    start_with(views_url, Settings::default()).await
}

pub async fn start_with(views_url: &str, settings: Settings) -> System {
    let folder = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).unwrap());
    let views = projectors::database::connect_and_migrate(views_url, 8).await.unwrap();
    let mut config = command_api::config::Config::with_defaults(([127, 0, 0, 1], 0).into(), settings.signing_key);
    config.admin = Some(("admin".to_owned(), "admin-password".to_owned()));
    if let Some(order_wait) = settings.order_wait {
        config.order_wait = order_wait;
    }
    let shutdown = CancellationToken::new();
    let command_api = command_api::startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .unwrap();
    let _projections =
        projectors::supervisor::start(Arc::clone(&store), views.clone(), Default::default(), shutdown.clone());
    let query_config = query_api::config::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        verifier: Verifier::from_pem(&command_api.public_key_pem, "shop".to_owned(), "shop".to_owned()).unwrap(),
        read_wait: settings.read_wait,
    };
    let query_api = query_api::startup::start(views, query_config, shutdown.clone())
        .await
        .unwrap();
    System {
        commands: format!("http://{}", command_api.address),
        queries: format!("http://{}", query_api.address),
        http: reqwest::Client::new(),
        store,
        shutdown,
        _folder: folder,
    }
}

/// Polls `check` every 20 ms until it answers `Ok`, and returns what it
/// found; after 30 s fails saying what did not happen and what `check`
/// last found.
pub async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let patience = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let last = match check().await {
            Ok(found) => return found,
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {patience:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl System {
    pub async fn command(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}{path}", self.commands)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    pub async fn query(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.queries));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .command("/auth/login", None, json!({"username": username, "password": password}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Registers and logs in; returns the token and the registration's position.
    pub async fn customer(&self, username: &str) -> (String, String) {
        let (status, body) = self
            .command(
                "/auth/register",
                None,
                json!({"username": username, "password": "password-123", "displayName": username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let position = body["position"].as_str().unwrap().to_owned();
        (self.login(username, "password-123").await, position)
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
