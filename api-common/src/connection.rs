//! Serving one accepted connection: poem's endpoint over hyper's HTTP/1
//! and HTTP/2 (whichever the client speaks), with the deadlines of
//! [`HttpLimits`]. poem's own server gives hyper no timer, so hyper's
//! header-read deadline never fires there; here it does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, IntoResponse, Response};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::first_head;
use crate::http_limits::HttpLimits;
use crate::idle::{Activity, WatchedBody, WatchedSocket};
use crate::problem::ProblemResponse;
use crate::rewind::Rewind;

/// The headers of one HTTP/2 request, and the buffer of one HTTP/1
/// connection, may not exceed this (hyper allows 400 KiB per connection).
const MAX_HEADERS_BYTES: usize = 64 * 1024;
/// How long a connection closed for idleness may take to say goodbye
/// (HTTP/2's GOAWAY) before it is dropped.
const FAREWELL: Duration = Duration::from_secs(1);

/// What every connection of one server shares.
pub struct Shared {
    pub endpoint: BoxEndpoint<'static, Response>,
    pub limits: HttpLimits,
    pub local: SocketAddr,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// How long requests in flight may take to finish after shutdown.
    pub drain: Duration,
}

/// Serves `socket` until the client closes it, it stays idle for the idle
/// timeout, or shutdown comes (then requests in flight get `drain`).
///
/// Until the first request's head has arrived (within the header timeout
/// and the idle timeout, whichever is shorter) the connection holds only
/// the bytes it sent; hyper's buffers, and the larger state of the
/// connection it serves, are allocated after that (see
/// [`crate::first_head`]).
pub async fn serve(mut socket: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    let limits = &shared.limits;
    let within = limits.header_timeout.min(limits.idle_timeout);
    let first = tokio::select! {
        head = first_head::read(&mut socket, within, MAX_HEADERS_BYTES) => head,
        () = shared.shutdown.cancelled() => None,
    };
    let Some(head) = first else {
        return;
    };
    Box::pin(serve_http(Rewind::new(head, socket), remote, shared)).await;
}

/// [`serve`] once the first head has arrived: hyper serves `socket`.
async fn serve_http(socket: Rewind<TcpStream>, remote: SocketAddr, shared: Arc<Shared>) {
    let activity = Activity::new();
    let service = hyper::service::service_fn({
        let shared = Arc::clone(&shared);
        let activity = Arc::clone(&activity);
        move |request| {
            let shared = Arc::clone(&shared);
            let activity = Arc::clone(&activity);
            let handling = activity.handling();
            async move {
                let answer = respond(&shared, request, remote).await;
                drop(handling);
                let answer = hyper::Response::from(answer);
                Ok::<_, Infallible>(answer.map(|body| WatchedBody::new(body, activity)))
            }
        }
    });
    let builder = builder(&shared.limits);
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(WatchedSocket::new(socket, Arc::clone(&activity))), service);
    tokio::pin!(connection);
    let grace = tokio::select! {
        _ = connection.as_mut() => return,
        () = activity.idle_for(shared.limits.idle_timeout) => FAREWELL,
        () = shared.shutdown.cancelled() => shared.drain,
    };
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, connection).await;
}

/// hyper's HTTP/1 and HTTP/2 with our limits, and a timer so that the
/// header-read deadline runs.
fn builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADERS_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(u32::try_from(MAX_HEADERS_BYTES).unwrap_or(u32::MAX));
    builder
}

/// The endpoint's answer to `request`, or a 503 when it takes longer than
/// the request deadline (the endpoint's work is then dropped).
async fn respond(shared: &Shared, request: hyper::Request<Incoming>, remote: SocketAddr) -> Response {
    let request = poem::Request::from((
        request,
        LocalAddr(shared.local.into()),
        RemoteAddr(remote.into()),
        Scheme::HTTP,
    ));
    let deadline = shared.limits.request_timeout;
    match tokio::time::timeout(deadline, shared.endpoint.get_response(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%remote, ?deadline, "request exceeded its deadline");
            ProblemResponse::unavailable(
                "request-timeout",
                format!("the request took longer than {} ms", deadline.as_millis()),
                1,
            )
            .into_response()
        }
    }
}
