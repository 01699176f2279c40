//! Prometheus metrics. One recorder per process (the services of `cargo
//! run` share it); every service renders it at `GET /metrics` and counts
//! and times its requests by operation. With `METRICS_ADDR` the process
//! serves it on that address alone ([`serve_apart`]), and the services'
//! own ports answer 404 at `/metrics`: scrapers get a port of their own
//! that need not be reachable where clients are.
//!
//! - `http_requests_total{service, operation, method, status}`
//! - `http_request_duration_seconds{service, operation, method}` (histogram)
//!
//! `operation` is the OpenAPI `operationId` (`none` for paths outside the
//! API, such as `/docs`, or unknown paths), so the labels stay few.

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::http::Method;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OperationId;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Env};
use crate::serve::Server;

/// Histogram buckets for every `*_seconds` metric: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Whether this process serves `/metrics` on an address of its own.
static APART: AtomicBool = AtomicBool::new(false);

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        handle
    })
}

/// `GET /metrics` on a service's port: the Prometheus text format, or 404
/// once [`serve_apart`] serves it elsewhere.
pub fn render() -> Response {
    if APART.load(Ordering::SeqCst) {
        return crate::problem::from_poem_error(poem::error::NotFoundError.into());
    }
    text()
}

fn text() -> Response {
    handle()
        .render()
        .with_content_type("text/plain; version=0.0.4")
        .into_response()
}

/// `METRICS_ADDR`: where the process serves its metrics alone; `None`
/// (unset) keeps them on each service's port.
pub fn address(env: &Env) -> Result<Option<SocketAddr>, ConfigError> {
    env.parse("METRICS_ADDR")
}

/// Serves `GET /metrics` on `listen` until `shutdown`; from then on the
/// services of this process answer 404 there. Called once per process,
/// before the services start, so their ports never serve the metrics.
pub async fn serve_apart(listen: SocketAddr, shutdown: CancellationToken) -> io::Result<Server> {
    let routes = Route::new()
        .at("/metrics", poem::get(poem::endpoint::make_sync(|_| text())))
        .catch_all_error(|error| async move { crate::problem::from_poem_error(error) });
    let server = crate::serve::serve("metrics", listen, routes, shutdown).await?;
    APART.store(true, Ordering::SeqCst);
    Ok(server)
}

/// [`serve_apart`] on `listen` when `METRICS_ADDR` gave one; the error
/// names the variable, for the binaries to print.
pub async fn serve_configured(
    listen: Option<SocketAddr>,
    shutdown: &CancellationToken,
) -> Result<Option<Server>, String> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    serve_apart(listen, shutdown.clone())
        .await
        .map(Some)
        .map_err(|e| format!("METRICS_ADDR {listen}: {e}"))
}

/// The method as a label: the standard ones, else `other` (a client may
/// send any token as a method; each would be a new series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times `request` as `service`. Errors pass through as errors,
/// for the problem+json conversion further out.
pub async fn record<E: Endpoint>(next: E, request: Request, service: &'static str) -> poem::Result<Response> {
    handle();
    let method = method_label(request.method());
    let started = Instant::now();
    let outcome = next.call(request).await.map(IntoResponse::into_response);
    let elapsed = started.elapsed().as_secs_f64();
    let (status, operation) = match &outcome {
        Ok(response) => (response.status(), response.data::<OperationId>()),
        Err(error) => (error.status(), error.data::<OperationId>()),
    };
    let operation = operation.map_or("none", |id| id.0);
    let status = status.as_u16().to_string();
    metrics::histogram!(
        "http_request_duration_seconds",
        "service" => service, "operation" => operation, "method" => method
    )
    .record(elapsed);
    metrics::counter!(
        "http_requests_total",
        "service" => service, "operation" => operation, "method" => method, "status" => status
    )
    .increment(1);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for token in ["BREW", "PROPFIND", "X-ANYTHING"] {
            assert_eq!(method_label(&Method::from_bytes(token.as_bytes()).unwrap()), "other");
        }
    }
}
