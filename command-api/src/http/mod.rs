//! The HTTP surface: one API struct per resource, assembled into one
//! OpenAPI service with its spec at `/openapi.json` and Swagger UI at `/docs`.

mod accounts_api;
mod credentials_api;
mod fields;
mod fulfilment_api;
mod keys_api;
mod links;
mod order_refusals;
mod orders_api;
mod payment_auth;
mod products_api;
mod request;
mod saga_parked_api;
mod signed_body;
mod users_api;

use std::sync::Arc;

use api_common::health::{HealthApi, ReadinessCheck};
use poem::{Endpoint, EndpointExt};
use poem_openapi::OpenApiService;

use api_common::problem::{ErrorChain, Problem, ProblemResponse};
use poem_openapi::payload::Json;

use crate::accounts::Accounts;
use crate::aggregates::CommandError;
use crate::auth::tokens::Tokens;
use crate::catalog::Catalog;
use crate::orders::Orders;
use crate::saga::admin::ParkedAdmin;
use crate::saga::health::SagaHealth;
use crate::settlement::Settlement;
use crate::webhook::Webhooks;

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

/// A problem's status, body and `Retry-After`.
fn parts(problem: ProblemResponse) -> (u16, Json<Problem>, Option<u32>) {
    match problem {
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

/// A problem whose status the operation does not document: a bug, answered
/// as internal (the operations' tests keep each set exact).
fn undocumented(status: u16) -> Json<Problem> {
    let ProblemResponse::Internal(problem) =
        ProblemResponse::internal(format!("an operation answered {status}, which it does not document"))
    else {
        unreachable!("internal() answers Internal")
    };
    problem
}

/// Declares the error answers of one operation: exactly the statuses it can
/// answer, each `application/problem+json` with its own description, and a
/// `From<ProblemResponse>` that keeps each status (one it does not list is
/// a bug, answered 500). `503`, after the braces, carries `Retry-After`;
/// so does `429` (`TooManyRequests`, built by the operation itself, as no
/// shared problem has that status). Every set has `500 Internal`.
///
/// The statuses answered before the operation runs come from
/// [`api_common::problem::from_poem_error`]: 400 (unreadable JSON or a field
/// the schema refuses), 401 (no valid bearer token), 413 (the body is over
/// [`MAX_BODY_BYTES`]), 415 (not `application/json`).
macro_rules! problems {
    (
        $(#[$meta:meta])* $name:ident {
            $($status:tt $variant:ident => $doc:tt,)*
        }
        $(429 => $throttled:tt)?
        $(503 => $unavailable:tt)?
    ) => {
        $(#[$meta])*
        #[derive(poem_openapi::ApiResponse, Debug)]
        pub(crate) enum $name {
            $(
                #[doc = $doc]
                #[oai(status = $status, content_type = "application/problem+json")]
                $variant(poem_openapi::payload::Json<api_common::problem::Problem>),
            )*
            $(
                #[doc = $throttled]
                #[oai(status = 429, content_type = "application/problem+json")]
                TooManyRequests(
                    poem_openapi::payload::Json<api_common::problem::Problem>,
                    #[oai(header = "Retry-After")] u32,
                ),
            )?
            $(
                #[doc = $unavailable]
                #[oai(status = 503, content_type = "application/problem+json")]
                Unavailable(
                    poem_openapi::payload::Json<api_common::problem::Problem>,
                    #[oai(header = "Retry-After")] Option<u32>,
                ),
            )?
        }

        impl From<api_common::problem::ProblemResponse> for $name {
            fn from(problem: api_common::problem::ProblemResponse) -> Self {
                let (status, problem, _retry_after) = $crate::http::parts(problem);
                match status {
                    $($status => Self::$variant(problem),)*
                    $(503 => {
                        let _ = $unavailable;
                        Self::Unavailable(problem, _retry_after)
                    })?
                    other => Self::Internal($crate::http::undocumented(other)),
                }
            }
        }
    };
}

pub(crate) use problems;

/// Everything the operations need. They take it from the request
/// (`Data`), so the API structs hold nothing and the spec needs none of it.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub catalog: Arc<Catalog>,
    pub orders: Arc<Orders>,
    /// Settling payments and closing orders.
    pub settlement: Arc<Settlement>,
    /// The payment provider's signatures.
    pub webhooks: Arc<Webhooks>,
    pub tokens: Arc<Tokens>,
    pub store: Arc<dyn event_store::EventStore>,
    /// The saga's parked events, for administrators.
    pub parked: Arc<ParkedAdmin>,
    /// This process's saga, when it runs one: readiness reports it stalled
    /// or lagging.
    pub saga_health: Option<Arc<SagaHealth>>,
}

type Apis = (
    accounts_api::AccountsApi,
    credentials_api::CredentialsApi,
    users_api::UsersApi,
    products_api::ProductsApi,
    orders_api::OrdersApi,
    fulfilment_api::FulfilmentApi,
    keys_api::KeysApi,
    saga_parked_api::SagaParkedApi,
    HealthApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        accounts_api::AccountsApi,
        credentials_api::CredentialsApi,
        users_api::UsersApi,
        products_api::ProductsApi,
        orders_api::OrdersApi,
        fulfilment_api::FulfilmentApi,
        keys_api::KeysApi,
        saga_parked_api::SagaParkedApi,
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

/// Ready when the event store answers and this process's saga, if it runs
/// one, is neither stalled nor lagging.
fn store_and_saga_ready(store: Arc<dyn event_store::EventStore>, saga: Option<Arc<SagaHealth>>) -> ReadinessCheck {
    let store_answers = event_store_answers(Arc::clone(&store));
    let filter = Arc::new(crate::saga::saga_filter(false));
    Arc::new(move || {
        let (store, saga, filter, store_answers) = (
            Arc::clone(&store),
            saga.clone(),
            Arc::clone(&filter),
            Arc::clone(&store_answers),
        );
        Box::pin(async move {
            store_answers().await?;
            match saga {
                Some(saga) => saga.check(store.as_ref(), &filter).await,
                None => Ok(()),
            }
        })
    })
}

/// The OpenAPI document, as committed under `openapi/command-api.json`. It
/// needs no event store and no key.
pub fn spec() -> String {
    api_common::openapi_links::with_links(&service().spec(), links::LINKS)
}

pub fn routes(services: &Services) -> impl Endpoint + use<> {
    let ready = store_and_saga_ready(Arc::clone(&services.store), services.saga_health.clone());
    api_common::routes::routes(
        "command-api",
        service(),
        links::LINKS,
        MAX_BODY_BYTES,
        services.tokens.verifier(),
        ready,
    )
    .data(Arc::clone(&services.accounts))
    .data(Arc::clone(&services.catalog))
    .data(Arc::clone(&services.orders))
    .data(Arc::clone(&services.settlement))
    .data(Arc::clone(&services.webhooks))
    .data(Arc::clone(&services.tokens))
    .data(Arc::clone(&services.parked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::validation::{InvalidField, Problem as FieldProblem};

    #[derive(Debug, thiserror::Error)]
    #[error("an unexpected refusal")]
    struct Refusal;

    fn answer(error: CommandError<Refusal>) -> (u16, Json<Problem>, Option<u32>) {
        parts(failure(error))
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
