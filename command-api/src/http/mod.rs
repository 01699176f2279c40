//! The HTTP surface: one API struct per resource, assembled into one
//! OpenAPI service with its spec at `/openapi.json` and Swagger UI at `/docs`.

mod accounts_api;
mod keys_api;
mod orders_api;
mod products_api;
mod request;

use std::sync::Arc;

use api_common::health::{HealthApi, ReadinessCheck};
use poem::{Endpoint, EndpointExt};
use poem_openapi::OpenApiService;

use api_common::problem::{ErrorChain, ProblemResponse};

use crate::accounts::Accounts;
use crate::aggregates::CommandError;
use crate::auth::tokens::Tokens;
use crate::catalog::Catalog;
use crate::orders::Orders;

/// The largest request body accepted: an order of 50 lines with long
/// addresses fits many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Seconds a client is asked to wait before retrying a command the event
/// store could not take.
const RETRY_AFTER_SECONDS: u32 = 1;

/// The answer to a command error that means the same in every operation:
/// invalid input, contention, an unavailable store, a failure on our side.
/// Each resource answers its aggregate's refusals itself and hands the rest
/// here; a refusal it does not expect is a bug, answered as internal.
fn failure<E>(error: CommandError<E>) -> ProblemResponse
where
    E: std::error::Error + Send + Sync + 'static,
{
    match error {
        CommandError::Invalid(field) => ProblemResponse::invalid(&field),
        CommandError::Contention(_) => {
            tracing::warn!(error = %ErrorChain(&error), "command gave up on contention");
            ProblemResponse::conflict("contention", "others changed the same resource at the same time; retry")
        }
        CommandError::Unavailable(_) => {
            tracing::warn!(error = %ErrorChain(&error), "command failed: event store unavailable");
            ProblemResponse::unavailable(
                "store-unavailable",
                "the event store is unavailable; retry",
                RETRY_AFTER_SECONDS,
            )
        }
        CommandError::Refused(_) | CommandError::Internal(_) => ProblemResponse::internal_from(&error),
    }
}

/// Everything the operations need. They take it from the request
/// (`Data`), so the API structs hold nothing and the spec needs none of it.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub catalog: Arc<Catalog>,
    pub orders: Arc<Orders>,
    pub tokens: Arc<Tokens>,
    pub store: Arc<dyn event_store::EventStore>,
}

type Apis = (
    accounts_api::AccountsApi,
    products_api::ProductsApi,
    orders_api::OrdersApi,
    keys_api::KeysApi,
    HealthApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        accounts_api::AccountsApi,
        products_api::ProductsApi,
        orders_api::OrdersApi,
        keys_api::KeysApi,
        HealthApi,
    );
    OpenApiService::new(apis, "Shop command API", env!("CARGO_PKG_VERSION")).description(
        "The write side of Shop: accounts, catalog administration and orders. Every accepted \
             command answers with the global position of its last event; pass it to the query API \
             to read your own writes.",
    )
}

/// Ready when the event store answers.
fn event_store_answers(store: Arc<dyn event_store::EventStore>) -> ReadinessCheck {
    Arc::new(move || {
        let store = Arc::clone(&store);
        Box::pin(async move {
            store
                .head()
                .await
                .map(|_| ())
                .map_err(|e| format!("event store unavailable: {e}"))
        })
    })
}

/// The OpenAPI document, as committed under `openapi/command-api.json`. It
/// needs no event store and no key.
pub fn spec() -> String {
    service().spec()
}

pub fn routes(services: &Services) -> impl Endpoint + use<> {
    let ready = event_store_answers(Arc::clone(&services.store));
    api_common::routes::routes(
        "command-api",
        service(),
        MAX_BODY_BYTES,
        services.tokens.verifier(),
        ready,
    )
    .data(Arc::clone(&services.accounts))
    .data(Arc::clone(&services.catalog))
    .data(Arc::clone(&services.orders))
    .data(Arc::clone(&services.tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_common::problem::Problem;
    use domain::validation::{InvalidField, Problem as FieldProblem};
    use poem_openapi::payload::Json;

    #[derive(Debug, thiserror::Error)]
    #[error("an unexpected refusal")]
    struct Refusal;

    fn answer(error: CommandError<Refusal>) -> (u16, Json<Problem>, Option<u32>) {
        match failure(error) {
            ProblemResponse::Unavailable(problem, retry_after) => (503, problem, retry_after),
            ProblemResponse::BadRequest(problem)
            | ProblemResponse::Unauthorized(problem)
            | ProblemResponse::Forbidden(problem)
            | ProblemResponse::NotFound(problem)
            | ProblemResponse::Conflict(problem)
            | ProblemResponse::Unprocessable(problem)
            | ProblemResponse::Internal(problem) => (problem.status, problem, None),
        }
    }

    /// Printing the spec builds nothing: no store, no key, no runtime.
    #[test]
    fn the_spec_builds_outside_any_runtime() {
        let spec: serde_json::Value = serde_json::from_str(&spec()).expect("the spec is JSON");
        assert_eq!(spec["info"]["title"], "Shop command API");
    }

    #[test]
    fn each_kind_of_failure_has_its_own_status() {
        let invalid = InvalidField::new("name", FieldProblem::Malformed { what: "name" });
        assert_eq!(answer(CommandError::Invalid(invalid)).0, 400);
        assert_eq!(answer(CommandError::Contention("product-1".to_owned())).0, 409);
        let down = event_store::StoreError::Closed;
        let (status, _, retry_after) = answer(CommandError::Unavailable(down));
        assert_eq!((status, retry_after), (503, Some(RETRY_AFTER_SECONDS)));
        assert_eq!(
            answer(CommandError::Refused(Refusal)).0,
            500,
            "a refusal nobody expects is a bug"
        );
    }

    #[test]
    fn an_internal_failure_tells_the_client_nothing_of_its_cause() {
        let (status, problem, _) = answer(CommandError::internal("secret table is corrupt"));
        assert_eq!(status, 500);
        assert!(!problem.detail.contains("secret"), "{}", problem.detail);
    }
}
