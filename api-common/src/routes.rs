//! How every HTTP service is put together: its operations at `/`, Swagger
//! UI at `/docs`, the spec at `/openapi.json`, Prometheus metrics at
//! `/metrics`, a body size limit, the access-token verifier, and
//! problem+json for every error, including those poem raises before an
//! operation runs. Every path answers the methods RFC 9110 asks of it:
//! `OPTIONS` with `204` and `Allow`, `HEAD` wherever `GET` is, and any
//! other method with `405` and `Allow`.

use std::sync::Arc;

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::{OpenApi, OpenApiService};

use crate::health::ReadinessCheck;
use crate::verifier::Verifier;

/// The paths beside the operations, all read-only.
const FIXED_GET_PATHS: &[&str] = &[
    "/openapi.json",
    "/metrics",
    "/docs",
    "/docs/",
    "/docs/oauth-receiver.html",
];

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
    let methods = Arc::new(MethodTable::of::<T>());
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", poem::get(spec))
        .at(
            "/metrics",
            poem::get(poem::endpoint::make_sync(|_| crate::metrics::render())),
        )
        .around(move |next, request| answer_methods(next, request, Arc::clone(&methods)))
        .around(move |next, request| crate::body_limit::limit_body(next, request, max_body_bytes))
        .around(move |next, request| crate::metrics::record(next, request, service))
        .data(verifier)
        .data(ready)
        .catch_all_error(|error| async move { crate::problem::from_poem_error(error) })
}

/// `OPTIONS` and methods a known path does not answer, decided from the
/// table before the router runs; everything else goes on to the router.
async fn answer_methods<E: Endpoint>(next: E, request: Request, table: Arc<MethodTable>) -> poem::Result<Response> {
    let Some(allowed) = table.allowed(request.uri().path()) else {
        return next.call(request).await.map(IntoResponse::into_response);
    };
    let allow = allow_header(&allowed);
    if request.method() == Method::OPTIONS {
        return Ok(Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(header::ALLOW, allow)
            .finish());
    }
    if !allowed.contains(request.method()) {
        let mut response = crate::problem::from_poem_error(poem::error::MethodNotAllowedError.into());
        response
            .headers_mut()
            .insert(header::ALLOW, allow.parse().expect("method names are header values"));
        return Ok(response);
    }
    next.call(request).await.map(IntoResponse::into_response)
}

fn allow_header(methods: &[Method]) -> String {
    methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

/// The methods each path answers: the operations' (from the API's own
/// metadata, so it cannot drift from the router), `GET` on the fixed paths,
/// and with them `HEAD` wherever `GET` is and `OPTIONS` everywhere.
#[derive(Debug)]
pub struct MethodTable(Vec<(Vec<Segment>, Vec<Method>)>);

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}` in the spec: any one non-empty segment.
    Parameter,
}

impl MethodTable {
    pub fn of<T: OpenApi>() -> Self {
        let mut table = Self(Vec::new());
        for path in T::meta().into_iter().flat_map(|api| api.paths) {
            for operation in path.operations {
                table.add(&path.path, operation.method);
            }
        }
        for path in FIXED_GET_PATHS {
            table.add(path, Method::GET);
        }
        for (_, methods) in &mut table.0 {
            if methods.contains(&Method::GET) {
                methods.push(Method::HEAD);
            }
            methods.push(Method::OPTIONS);
        }
        table
    }

    fn add(&mut self, path: &str, method: Method) {
        let segments = segments(path);
        match self.0.iter_mut().find(|(known, _)| *known == segments) {
            Some((_, methods)) => methods.push(method),
            None => self.0.push((segments, vec![method])),
        }
    }

    /// The methods `path` answers; `None` when no route has it.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        self.0
            .iter()
            .find(|(segments, _)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(segment, part)| match segment {
                        Segment::Literal(literal) => literal == part,
                        Segment::Parameter => !part.is_empty(),
                    })
            })
            .map(|(_, methods)| methods.clone())
    }
}

fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .skip(1)
        .map(|part| {
            if part.starts_with('{') || part.starts_with(':') {
                Segment::Parameter
            } else {
                Segment::Literal(part.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthApi;

    #[test]
    fn the_table_knows_the_operations_and_the_fixed_paths() {
        let table = MethodTable::of::<HealthApi>();
        assert_eq!(
            table.allowed("/health/live"),
            Some(vec![Method::GET, Method::HEAD, Method::OPTIONS])
        );
        assert_eq!(
            table.allowed("/openapi.json"),
            Some(vec![Method::GET, Method::HEAD, Method::OPTIONS])
        );
        assert_eq!(table.allowed("/health"), None);
        assert_eq!(table.allowed("/health/live/"), None);
    }

    #[test]
    fn a_parameter_matches_one_non_empty_segment() {
        let mut table = MethodTable(Vec::new());
        table.add("/orders/{id}/cancel", Method::POST);
        assert_eq!(table.allowed("/orders/42/cancel"), Some(vec![Method::POST]));
        assert_eq!(table.allowed("/orders//cancel"), None);
        assert_eq!(table.allowed("/orders/42"), None);
    }
}
