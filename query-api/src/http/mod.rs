//! The HTTP surface of the query API, with its spec at `/openapi.json` and
//! Swagger UI at `/docs`. Every read answers with `X-Position`, the log
//! position its data reflects, and accepts `minPosition` (or
//! `X-Min-Position`) to wait for a position a command returned.

mod lifecycle;
mod orders_api;
mod paging;
mod products_api;
mod user_list_api;
mod users_api;

use std::sync::Arc;

use api_common::health::{HealthApi, ReadinessCheck};
use api_common::problem::ProblemResponse;
use poem::{Endpoint, EndpointExt};
use poem_openapi::OpenApiService;
use sea_orm::DatabaseConnection;

use crate::freshness::{Freshness, FreshnessError};
use paging::MinPosition;

/// Everything the reads need; the operations take it from the request
/// (`Data`), so the API structs hold nothing.
#[derive(Clone)]
pub struct Views {
    pub db: DatabaseConnection,
    pub freshness: Arc<Freshness>,
}

type Apis = (
    products_api::ProductsApi,
    users_api::UsersApi,
    user_list_api::UserListApi,
    orders_api::OrdersApi,
    HealthApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        products_api::ProductsApi,
        users_api::UsersApi,
        user_list_api::UserListApi,
        orders_api::OrdersApi,
        HealthApi,
    );
    OpenApiService::new(apis, "Shop query API", env!("CARGO_PKG_VERSION")).description(
        "The read side of Shop: the catalog, your profile and your orders (every user and order, for \
         admins). Pass the `position` a \
         command returned as `minPosition` to read your own writes.",
    )
}

/// Ready when the views database answers.
fn views_answer(db: DatabaseConnection) -> ReadinessCheck {
    Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await.map_err(|e| format!("views database unavailable: {e}")) })
    })
}

/// The OpenAPI document, as committed under `openapi/query-api.json`. It
/// needs no database.
pub fn spec() -> String {
    service().spec()
}

pub fn routes(views: Views, verifier: Arc<api_common::verifier::Verifier>) -> impl Endpoint + use<> {
    let ready = views_answer(views.db.clone());
    api_common::routes::routes("query-api", service(), &[], 16 * 1024, verifier, ready).data(views)
}

/// Waits until `projections` reflect the wanted position (`minPosition`,
/// else `X-Min-Position`); the position they reflect, as text for
/// `X-Position`.
async fn reflected(
    freshness: &Freshness,
    projections: &[&str],
    query: Option<MinPosition>,
    header: Option<MinPosition>,
) -> Result<String, ProblemResponse> {
    let wanted = query.or(header).map(|MinPosition(position)| position);
    match freshness.reached(projections, wanted).await {
        Ok(position) => Ok(position.to_string()),
        Err(FreshnessError::NotYet { wanted }) => Err(ProblemResponse::unavailable(
            "not-yet-visible",
            format!("the views have not reached position {wanted} yet; retry"),
            1,
        )),
    }
}

/// A read of the views that failed: 503 with `Retry-After` while the
/// database is unavailable (down, unreachable, no connection free within
/// `VIEWS_ACQUIRE_TIMEOUT_MS`, a statement cancelled by
/// `VIEWS_STATEMENT_TIMEOUT_MS`), else 500.
fn views_failed(error: sea_orm::DbErr) -> ProblemResponse {
    if views::is_unavailable(&error) {
        return ProblemResponse::unavailable("views-unavailable", "the views database is unavailable; retry", 1);
    }
    ProblemResponse::internal(error)
}

fn money(minor: i64) -> String {
    domain::money::Money::from_minor_units(minor.max(0) as u64).to_string()
}

#[cfg(test)]
mod tests {
    /// Printing the spec builds nothing that needs a runtime (a database
    /// connection would).
    #[test]
    fn the_spec_builds_outside_any_runtime() {
        let spec: serde_json::Value = serde_json::from_str(&super::spec()).expect("the spec is JSON");
        assert_eq!(spec["info"]["title"], "Shop query API");
    }
}
