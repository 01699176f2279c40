//! The projectors' admin HTTP API (default `127.0.0.1:8082`): each
//! projection's checkpoint against the log head, and replays without
//! downtime. Spec at `/openapi.json`, Swagger UI at `/docs`.

mod projections_api;
mod replays;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_common::health::{HealthApi, ReadinessCheck};
use api_common::verifier::Verifier;
use event_store::EventStore;
use poem_openapi::OpenApiService;
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use replays::Replays;

/// What the admin API works on.
#[derive(Clone)]
pub struct Projectors {
    pub store: Arc<dyn EventStore>,
    pub db: DatabaseConnection,
    pub replays: Arc<Replays>,
}

type Apis = (projections_api::ProjectionsApi, HealthApi);

fn service(projectors: &Projectors) -> OpenApiService<Apis, ()> {
    let apis = (
        projections_api::ProjectionsApi {
            projectors: projectors.clone(),
        },
        HealthApi {
            ready: store_and_views_answer(projectors.clone()),
        },
    );
    OpenApiService::new(apis, "Shop projectors admin API", env!("CARGO_PKG_VERSION")).description(
        "How far each projection has read the event log, and replays: a projection is rebuilt from \
         the start of the log while its old rows keep serving reads.",
    )
}

/// Ready when the event store and the views database answer.
fn store_and_views_answer(projectors: Projectors) -> ReadinessCheck {
    Arc::new(move || {
        let projectors = projectors.clone();
        Box::pin(async move {
            projectors
                .store
                .head()
                .await
                .map_err(|e| format!("event store unavailable: {e}"))?;
            projectors
                .db
                .ping()
                .await
                .map_err(|e| format!("views database unavailable: {e}"))
        })
    })
}

/// The OpenAPI document, built on an in-memory store and database: the
/// spec does not depend on either.
pub async fn spec_without_state() -> String {
    let store = event_store::sqlite::SqliteEventStore::open(":memory:").expect("an in-memory SQLite store opens");
    let db = views::connect("sqlite::memory:", 1)
        .await
        .expect("an in-memory SQLite database opens");
    service(&Projectors {
        store: Arc::new(store),
        db,
        replays: Arc::default(),
    })
    .spec()
}

pub struct AdminApi {
    pub address: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
}

impl AdminApi {
    pub async fn stopped(self) -> std::io::Result<()> {
        self.server.await.map_err(std::io::Error::other)?
    }
}

/// Serves the admin API on `listen` until `shutdown`.
pub async fn start(
    projectors: Projectors,
    verifier: Verifier,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<AdminApi> {
    let acceptor = api_common::listener::bind(listen).await?;
    let address = acceptor.address().unwrap_or(listen);
    let routes = api_common::routes::routes("projectors", service(&projectors), 16 * 1024, Arc::new(verifier));
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes, shutdown.cancelled_owned(), Some(Duration::from_secs(10)))
            .await
    });
    tracing::info!(%address, "projectors admin API listening");
    Ok(AdminApi { address, server })
}
