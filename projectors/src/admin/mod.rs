//! The projectors' admin HTTP API (default `127.0.0.1:8082`): each
//! projection's checkpoint against the log head, and replays without
//! downtime. Spec at `/openapi.json`, Swagger UI at `/docs`.

mod health_api;
mod projections_api;
mod replays;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_common::verifier::Verifier;
use event_store::EventStore;
use poem::{Endpoint, EndpointExt, Route};
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

type Apis = (projections_api::ProjectionsApi, health_api::HealthApi);

fn service(projectors: &Projectors) -> OpenApiService<Apis, ()> {
    let apis = (
        projections_api::ProjectionsApi {
            projectors: projectors.clone(),
        },
        health_api::HealthApi {
            projectors: projectors.clone(),
        },
    );
    OpenApiService::new(apis, "Shop projectors admin API", env!("CARGO_PKG_VERSION")).description(
        "How far each projection has read the event log, and replays: a projection is rebuilt from \
         the start of the log while its old rows keep serving reads.",
    )
}

/// The OpenAPI document, built on an in-memory store and database: the
/// spec does not depend on either.
pub async fn spec_without_state() -> String {
    let store = event_store::sqlite::SqliteEventStore::open(":memory:").expect("an in-memory SQLite store opens");
    let db = crate::database::connect("sqlite::memory:", 1)
        .await
        .expect("an in-memory SQLite database opens");
    service(&Projectors {
        store: Arc::new(store),
        db,
        replays: Arc::default(),
    })
    .spec()
}

fn routes(projectors: &Projectors, verifier: Arc<Verifier>) -> impl Endpoint + use<> {
    let api = service(projectors);
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .around(|next, request| api_common::body_limit::limit_body(next, request, 16 * 1024))
        .data(verifier)
        .catch_all_error(|error| async move { api_common::problem::from_poem_error(error) })
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
    let routes = routes(&projectors, Arc::new(verifier));
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes, shutdown.cancelled_owned(), Some(Duration::from_secs(10)))
            .await
    });
    tracing::info!(%address, "projectors admin API listening");
    Ok(AdminApi { address, server })
}
