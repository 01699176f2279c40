//! How every HTTP service is put together: its operations at `/`, Swagger
//! UI at `/docs`, the spec at `/openapi.json`, Prometheus metrics at
//! `/metrics`, a body size limit, the access-token verifier, and
//! problem+json for every error, including those poem raises before an
//! operation runs.

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApi, OpenApiService};

use crate::health::ReadinessCheck;
use crate::verifier::Verifier;

/// `service` names the service in the metrics' labels; `ready` is what its
/// readiness probe asks. The operations take their state from the request
/// (`Data`): add it to what this returns.
pub fn routes<T: OpenApi + 'static>(
    service: &'static str,
    api: OpenApiService<T, ()>,
    max_body_bytes: usize,
    verifier: Arc<Verifier>,
    ready: ReadinessCheck,
) -> impl Endpoint {
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/metrics", poem::endpoint::make_sync(|_| crate::metrics::render()))
        .around(move |next, request| crate::body_limit::limit_body(next, request, max_body_bytes))
        .around(move |next, request| crate::metrics::record(next, request, service))
        .data(verifier)
        .data(ready)
        .catch_all_error(|error| async move { crate::problem::from_poem_error(error) })
}
