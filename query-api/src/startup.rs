//! Wiring: from a views database and a configuration to a listening server.

use std::sync::Arc;
use std::time::Duration;

use api_common::credentials::{Cached, Sources};
use api_common::serve::Server;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::freshness::Freshness;
use crate::http::{self, Views};

/// A running query API.
pub type QueryApi = Server;

fn views(db: DatabaseConnection, read_wait: Duration, max_read_waiters: usize) -> Views {
    Views {
        freshness: Arc::new(Freshness::new(db.clone(), read_wait, max_read_waiters)),
        db,
    }
}

/// Serves the views in `db` until `shutdown`.
pub async fn start(db: DatabaseConnection, config: Config, shutdown: CancellationToken) -> std::io::Result<QueryApi> {
    let views = views(db, config.read_wait, config.max_read_waiters);
    let versions = Cached::new(Sources {
        version: views::tables::users::credential_versions(views.db.clone()),
        revoked: views::tables::revoked_tokens::revocations(views.db.clone()),
    });
    let routes = http::routes(views, Arc::new(config.verifier.with_versions(Arc::new(versions))));
    api_common::serve::serve_within("query API", config.listen, config.http, routes, shutdown).await
}
