//! Wiring: from a views database and a configuration to a listening server.

use std::sync::Arc;
use std::time::Duration;

use api_common::serve::Server;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::freshness::Freshness;
use crate::http::{self, Views};

/// A running query API.
pub type QueryApi = Server;

fn views(db: DatabaseConnection, read_wait: Duration) -> Views {
    Views {
        freshness: Arc::new(Freshness::new(db.clone(), read_wait)),
        db,
    }
}

/// Serves the views in `db` until `shutdown`.
pub async fn start(db: DatabaseConnection, config: Config, shutdown: CancellationToken) -> std::io::Result<QueryApi> {
    let routes = http::routes(views(db, config.read_wait), Arc::new(config.verifier));
    api_common::serve::serve("query API", config.listen, routes, shutdown).await
}
