//! The whole system in this process, on free ports: the command API and
//! its saga over an embedded store ([`App`]), the projectors into the given
//! views database, and the query API over it.

use std::sync::Arc;
use std::time::Duration;

use api_common::verifier::Verifier;
use command_api::auth::tokens::SigningKey;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use crate::app::with_token;
use crate::{App, respond};

/// The running system. Dropping it stops it.
pub struct System {
    /// The command side.
    pub app: App,
    /// The command API's base URL.
    pub commands: String,
    /// The query API's base URL.
    pub queries: String,
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

/// With the default [`Settings`], its views in the database at `views_url`.
pub async fn start(views_url: &str) -> System {
    start_with(views_url, Settings::default()).await
}

/// With `settings`, its views in the database at `views_url` (migrated here).
pub async fn start_with(views_url: &str, settings: Settings) -> System {
    let views = projectors::database::connect_and_migrate(views_url, 8).await.unwrap();
    let mut config = command_api::config::Config::with_defaults(([127, 0, 0, 1], 0).into(), settings.signing_key);
    config.admin = App::config().admin;
    config.saga.max_unsettled = App::MAX_UNSETTLED;
    if let Some(order_wait) = settings.order_wait {
        config.order_wait = order_wait;
    }
    let app = App::start_with(config).await;
    let _projections = projectors::supervisor::start(
        Arc::clone(&app.store),
        views.clone(),
        Default::default(),
        app.shutdown(),
    );
    let query_config = query_api::config::Config {
        views_url: views_url.to_owned(),
        pool: 8.into(),
        startup_wait: api_common::startup_wait::DEFAULT_STARTUP_WAIT,
        listen: ([127, 0, 0, 1], 0).into(),
        verifier: Verifier::from_pem(app.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap(),
        read_wait: settings.read_wait,
        http: Default::default(),
        max_read_waiters: query_api::config::DEFAULT_MAX_READ_WAITERS,
        metrics_addr: None,
    };
    let query_api = query_api::startup::start(views, query_config, app.shutdown())
        .await
        .unwrap();
    System {
        commands: app.base.clone(),
        queries: format!("http://{}", query_api.address),
        app,
    }
}

impl System {
    /// `POST {path}` to the command API.
    pub async fn command(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.app.post(path, token, &body).await
    }

    /// `GET {path}` from the query API, to send as it is or with more
    /// headers.
    pub fn query_request(&self, path: &str) -> RequestBuilder {
        self.app.http.get(format!("{}{path}", self.queries))
    }

    /// `GET {path}` from the query API.
    pub async fn query(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        respond(with_token(self.query_request(path), token)).await
    }

    /// Logs in; the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.app.login(username, password).await
    }

    /// Registers and logs in; the token and the registration's position.
    pub async fn customer(&self, username: &str) -> (String, String) {
        let registered = self.app.register(username).await;
        let token = self.app.login(username, App::CUSTOMER_PASSWORD).await;
        (token, registered["position"].as_str().unwrap().to_owned())
    }
}
