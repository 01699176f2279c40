//! The projectors' admin HTTP API (default `127.0.0.1:8082`): each
//! projection's checkpoint against the log head, replays and blue/green
//! rebuilds without downtime (verified, promoted, rolled back), and the
//! parked events. Spec at `/openapi.json`, Swagger UI at `/docs`.

mod generations_api;
mod generations_view;
mod links;
mod operations;
mod optional_body;
mod parked_api;
mod projections_api;
mod ready;

use std::net::SocketAddr;
use std::sync::Arc;

use api_common::credentials::{Cached, Sources};
use api_common::health::{HealthApi, ReadinessCheck};
use api_common::http_limits::HttpLimits;
use api_common::serve::Server;
use api_common::verifier::Verifier;
use event_store::EventStore;
use poem::EndpointExt;
use poem_openapi::OpenApiService;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use views::tables::{revoked_tokens, users};

use crate::instance::Instance;

pub use operations::Operations;

/// What the admin API works on; its operations take it from the request
/// (`Data`), so the API itself holds nothing.
#[derive(Clone)]
pub struct Projectors {
    pub store: Arc<dyn EventStore>,
    pub db: DatabaseConnection,
    pub operations: Arc<Operations>,
    /// The instance whose projections this process runs (its readiness).
    pub instance: Arc<Instance>,
}

type Apis = (
    projections_api::ProjectionsApi,
    generations_api::GenerationsApi,
    parked_api::ParkedApi,
    HealthApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        projections_api::ProjectionsApi,
        generations_api::GenerationsApi,
        parked_api::ParkedApi,
        HealthApi,
    );
    OpenApiService::new(apis, "Shop projectors admin API", env!("CARGO_PKG_VERSION")).description(
        "How far each projection has read the event log; replays and rebuilds: a projection is \
         rebuilt from the start of the log beside its live rows, which keep serving reads, \
         verified against them, and promoted (or rolled back) at once; and the events a \
         projection could not read, parked so that it goes on past them.",
    )
}

/// Ready when the event store and the views database answer, and no
/// projection this process runs is stalled or lagging (`ready.rs`).
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
                .map_err(|e| format!("views database unavailable: {e}"))?;
            ready::projections_keep_up(projectors.store.as_ref(), &projectors.instance).await
        })
    })
}

/// The OpenAPI document, as committed under `openapi/projectors.json`. It
/// needs no event store and no database.
pub fn spec() -> String {
    api_common::openapi_links::with_links(&service().spec(), links::LINKS)
}

/// A running admin API.
pub type AdminApi = Server;

/// Serves the admin API on `listen`, within `limits`, until `shutdown`.
pub async fn start(
    projectors: Projectors,
    verifier: Verifier,
    listen: SocketAddr,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<AdminApi> {
    let ready = store_and_views_answer(projectors.clone());
    let versions = Cached::new(Sources {
        version: users::credential_versions(projectors.db.clone()),
        revoked: revoked_tokens::revocations(projectors.db.clone()),
    });
    let routes = api_common::routes::routes(
        "projectors",
        service(),
        links::LINKS,
        16 * 1024,
        Arc::new(verifier.with_versions(Arc::new(versions))),
        ready,
    )
    .data(projectors);
    api_common::serve::serve_within("projectors admin API", listen, limits, routes, shutdown).await
}

#[cfg(test)]
mod tests {
    /// Printing the spec builds nothing that needs a runtime (a store or a
    /// database connection would).
    #[test]
    fn the_spec_builds_outside_any_runtime() {
        let spec: serde_json::Value = serde_json::from_str(&super::spec()).expect("the spec is JSON");
        assert_eq!(spec["info"]["title"], "Shop projectors admin API");
    }
}
