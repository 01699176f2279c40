//! Wiring: from a views database and a configuration to a listening server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::freshness::Freshness;
use crate::http::{self, Views};

pub struct QueryApi {
    pub address: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
}

impl QueryApi {
    pub async fn stopped(self) -> std::io::Result<()> {
        self.server.await.map_err(std::io::Error::other)?
    }
}

pub fn views(db: DatabaseConnection, read_wait: Duration) -> Views {
    Views {
        freshness: Arc::new(Freshness::new(db.clone(), read_wait)),
        db,
    }
}

/// Serves the views in `db` until `shutdown`.
pub async fn start(db: DatabaseConnection, config: Config, shutdown: CancellationToken) -> std::io::Result<QueryApi> {
    let views = views(db, config.read_wait);
    let acceptor = api_common::listener::bind(config.listen).await?;
    let address = acceptor.address().unwrap_or(config.listen);
    let routes = http::routes(&views, Arc::new(config.verifier));
    let server = poem::Server::new_with_acceptor(acceptor);
    let server = tokio::spawn(async move {
        server
            .run_with_graceful_shutdown(routes, shutdown.cancelled_owned(), Some(Duration::from_secs(10)))
            .await
    });
    tracing::info!(%address, "query API listening");
    Ok(QueryApi { address, server })
}
