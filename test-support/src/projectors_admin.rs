//! The projectors' admin API on a free port, over a running command API's
//! log and views of its own.

use std::sync::Arc;

use api_common::verifier::Verifier;
use projectors::admin::{AdminApi, Projectors};
use sea_orm::DatabaseConnection;

use crate::App;

/// A running admin API. It stops with the [`App`] it was started over.
pub struct AdminServer {
    /// Its base URL, `http://127.0.0.1:{port}`.
    pub base: String,
    /// Its views, migrated.
    pub db: DatabaseConnection,
    _api: AdminApi,
    _folder: Option<tempfile::TempDir>,
}

impl AdminServer {
    /// Over `app`'s log and a fresh SQLite database, verifying tokens with
    /// `app`'s key. No projection runs: a test starts them when it wants
    /// the views to follow the log.
    pub async fn start(app: &App) -> Self {
        let (url, folder) = crate::sqlite_views();
        Self {
            _folder: Some(folder),
            ..Self::start_on(app, &url).await
        }
    }

    /// [`Self::start`] over the views at `views_url` (SQLite or Postgres).
    pub async fn start_on(app: &App, views_url: &str) -> Self {
        let db = projectors::database::connect_and_migrate(views_url, 4).await.unwrap();
        let projectors = Projectors {
            store: Arc::clone(&app.store),
            db: db.clone(),
            operations: Default::default(),
            instance: Default::default(),
        };
        let verifier = Verifier::from_pem(app.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap();
        let limits = api_common::http_limits::HttpLimits::default();
        let api = projectors::admin::start(projectors, verifier, ([127, 0, 0, 1], 0).into(), limits, app.shutdown())
            .await
            .unwrap();
        Self {
            base: format!("http://{}", api.address),
            db,
            _api: api,
            _folder: None,
        }
    }
}
