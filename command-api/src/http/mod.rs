//! The HTTP surface: one API struct per resource, assembled into one
//! OpenAPI service with its spec at `/openapi.json` and Swagger UI at `/docs`.

mod accounts_api;
mod keys_api;
mod orders_api;
mod products_api;
mod request;

use std::sync::Arc;

use api_common::health::{HealthApi, ReadinessCheck};
use poem::Endpoint;
use poem_openapi::OpenApiService;

use crate::accounts::Accounts;
use crate::auth::tokens::Tokens;
use crate::catalog::Catalog;
use crate::orders::Orders;

/// The largest request body accepted: an order of 50 lines with long
/// addresses fits many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the operations need.
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

fn service(services: &Services) -> OpenApiService<Apis, ()> {
    let apis = (
        accounts_api::AccountsApi {
            accounts: Arc::clone(&services.accounts),
        },
        products_api::ProductsApi {
            catalog: Arc::clone(&services.catalog),
        },
        orders_api::OrdersApi {
            orders: Arc::clone(&services.orders),
        },
        keys_api::KeysApi {
            tokens: Arc::clone(&services.tokens),
        },
        HealthApi {
            ready: event_store_answers(Arc::clone(&services.store)),
        },
    );
    OpenApiService::new(apis, "Shop command API", env!("CARGO_PKG_VERSION")).description(
        "The write side of Shop: accounts, catalog administration and orders. Every accepted \
             command answers with the global position of its last event; pass it to the query API \
             to read your own writes.",
    )
}

/// The OpenAPI document, as committed under `openapi/command-api.json`.
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

pub fn spec(services: &Services) -> String {
    service(services).spec()
}

/// The OpenAPI document, built without a real store or key: the spec does
/// not depend on either.
pub fn spec_without_state() -> String {
    let store: Arc<dyn event_store::EventStore> =
        Arc::new(event_store::sqlite::SqliteEventStore::open(":memory:").expect("an in-memory SQLite store opens"));
    let key = crate::auth::tokens::SigningKey::generate().expect("a key pair can be generated");
    let config = crate::config::Config::with_defaults(([127, 0, 0, 1], 0).into(), key);
    let outcomes = Arc::new(crate::order_outcomes::OrderOutcomes::default());
    let parts = crate::startup::parts(store, &config, outcomes).expect("the command side builds");
    spec(&parts.services)
}

pub fn routes(services: &Services) -> impl Endpoint + use<> {
    api_common::routes::routes(
        "command-api",
        service(services),
        MAX_BODY_BYTES,
        services.tokens.verifier(),
    )
}
