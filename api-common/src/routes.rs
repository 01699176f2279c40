//! How every HTTP service is put together: its operations at `/`, Swagger
//! UI at `/docs`, the spec at `/openapi.json`, Prometheus metrics at
//! `/metrics`, a body size limit on the operations that take a body, the
//! access-token verifier, a log span per request ([`crate::request_span`]),
//! and problem+json for every error, including those poem raises before an
//! operation runs. Every path answers the methods RFC 9110 asks of it:
//! `OPTIONS` with `204` and `Allow`, `HEAD` wherever `GET` is, and any
//! other method with `405` and `Allow`.

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::{OpenApi, OpenApiService};

use crate::health::ReadinessCheck;
use crate::openapi_links::{Link, with_links};
use crate::verifier::Verifier;

/// The paths beside the operations, all read-only.
const FIXED_GET_PATHS: &[&str] = &[
    "/openapi.json",
    "/metrics",
    "/docs",
    "/docs/",
    "/docs/oauth-receiver.html",
];

/// `service` names the service in the metrics' labels; `links` are written
/// into the served document (see [`crate::openapi_links`]); `ready` is what
/// its readiness probe asks. The operations take their state from the request
/// (`Data`): add it to what this returns.
///
/// The stack is boxed: its type, some twenty layers deep, would otherwise
/// be nested in every type built on it, past what a release build of a
/// crate that awaits a whole service (a benchmark) can lay out.
pub fn routes<T: OpenApi + 'static>(
    service: &'static str,
    api: OpenApiService<T, ()>,
    links: &'static [Link],
    max_body_bytes: usize,
    verifier: Arc<Verifier>,
    ready: ReadinessCheck,
) -> BoxEndpoint<'static> {
    let methods = Arc::new(MethodTable::of::<T>());
    let docs = api.swagger_ui();
    let document = with_links(&api.spec(), links);
    let spec = move |_: Request| {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(document.clone())
    };
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", poem::get(poem::endpoint::make_sync(spec)))
        .at(
            "/metrics",
            poem::get(poem::endpoint::make_sync(|_| crate::metrics::render())),
        )
        .around({
            let methods = Arc::clone(&methods);
            move |next, request| limit_declared_bodies(next, request, max_body_bytes, Arc::clone(&methods))
        })
        .around(move |next, request| answer_methods(next, request, Arc::clone(&methods)))
        .around(move |next, request| crate::metrics::record(next, request, service))
        .data(verifier)
        .data(ready)
        .catch_all_error(|error| async move { crate::problem::from_poem_error(error) })
        .around(crate::request_span::in_span)
        .boxed()
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

/// Limits the body of operations that declare one (they document 413); the
/// others never read theirs, so a body sent to them costs nothing and is
/// not refused.
async fn limit_declared_bodies<E: Endpoint>(
    next: E,
    request: Request,
    max_body_bytes: usize,
    table: Arc<MethodTable>,
) -> poem::Result<Response> {
    if table.takes_body(request.uri().path(), request.method()) {
        crate::body_limit::limit_body(next, request, max_body_bytes).await
    } else {
        next.call(request).await.map(IntoResponse::into_response)
    }
}

fn allow_header(methods: &[Method]) -> String {
    methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

/// The methods each path answers: the operations' (from the API's own
/// metadata, so it cannot drift from the router), `GET` on the fixed paths,
/// and with them `HEAD` wherever `GET` is and `OPTIONS` everywhere; and
/// which of those operations take a request body.
#[derive(Debug)]
pub struct MethodTable(Vec<PathMethods>);

/// One path of the table.
#[derive(Debug)]
struct PathMethods {
    segments: Vec<Segment>,
    methods: Vec<Method>,
    with_body: Vec<Method>,
}

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
                table.add(&path.path, operation.method, operation.request.is_some());
            }
        }
        for path in FIXED_GET_PATHS {
            table.add(path, Method::GET, false);
        }
        for route in &mut table.0 {
            if route.methods.contains(&Method::GET) {
                route.methods.push(Method::HEAD);
            }
            route.methods.push(Method::OPTIONS);
        }
        table
    }

    fn add(&mut self, path: &str, method: Method, takes_body: bool) {
        let segments = segments(path);
        let index = match self.0.iter().position(|route| route.segments == segments) {
            Some(index) => index,
            None => {
                self.0.push(PathMethods {
                    segments,
                    methods: Vec::new(),
                    with_body: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        let route = &mut self.0[index];
        if takes_body {
            route.with_body.push(method.clone());
        }
        route.methods.push(method);
    }

    fn route(&self, path: &str) -> Option<&PathMethods> {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        self.0.iter().find(|route| {
            route.segments.len() == parts.len()
                && route.segments.iter().zip(&parts).all(|(segment, part)| match segment {
                    Segment::Literal(literal) => literal == part,
                    Segment::Parameter => !part.is_empty(),
                })
        })
    }

    /// The methods `path` answers; `None` when no route has it.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        self.route(path).map(|route| route.methods.clone())
    }

    /// Whether `method` on `path` is an operation with a request body.
    pub fn takes_body(&self, path: &str, method: &Method) -> bool {
        self.route(path).is_some_and(|route| route.with_body.contains(method))
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
        table.add("/orders/{id}/cancel", Method::POST, true);
        assert_eq!(table.allowed("/orders/42/cancel"), Some(vec![Method::POST]));
        assert_eq!(table.allowed("/orders//cancel"), None);
        assert_eq!(table.allowed("/orders/42"), None);
    }

    #[test]
    fn the_table_knows_which_operations_take_a_body() {
        let mut table = MethodTable(Vec::new());
        table.add("/orders/{id}/cancel", Method::POST, true);
        table.add("/orders/{id}/cancel", Method::GET, false);
        assert!(table.takes_body("/orders/42/cancel", &Method::POST));
        assert!(!table.takes_body("/orders/42/cancel", &Method::GET));
        assert!(!table.takes_body("/orders/42", &Method::POST));
        assert!(!MethodTable::of::<HealthApi>().takes_body("/health/live", &Method::GET));
    }
}
