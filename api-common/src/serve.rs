//! Running an HTTP service: listen, serve until shutdown, drain, report.
//! Every Shop service starts its server here, so they all listen the same
//! way (`TCP_NODELAY`, see [`crate::listener`]), hold their connections to
//! the same limits ([`HttpLimits`], see [`crate::connection`]) and stop the
//! same way.
//!
//! At most `max_connections` are open at once: while that many are, the
//! server accepts no more (they wait in the kernel's backlog) rather than
//! accepting and then failing them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::{Endpoint, EndpointExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, Shared};
use crate::http_limits::HttpLimits;
use crate::listener::Listener;

/// How long requests in flight may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// A running server.
pub struct Server {
    /// Where it listens (with the real port when port 0 was asked for).
    pub address: SocketAddr,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Waits until the server has stopped after shutdown and drained.
    pub async fn stopped(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }
}

/// Serves `routes` on `listen` (port 0 picks a free one) within the
/// default [`HttpLimits`] until `shutdown` is cancelled, then lets requests
/// in flight finish for up to 10 s. `name` names the service in the log
/// line that says where it listens.
pub async fn serve(
    name: &'static str,
    listen: SocketAddr,
    routes: impl Endpoint + 'static,
    shutdown: CancellationToken,
) -> io::Result<Server> {
    serve_within(name, listen, HttpLimits::default(), routes, shutdown).await
}

/// [`serve`] within `limits` (the APIs pass theirs, read from `HTTP_*`).
pub async fn serve_within(
    name: &'static str,
    listen: SocketAddr,
    limits: HttpLimits,
    routes: impl Endpoint + 'static,
    shutdown: CancellationToken,
) -> io::Result<Server> {
    let listener = crate::listener::bind(listen).await?;
    let address = listener.address()?;
    let shared = Arc::new(Shared {
        endpoint: routes.map_to_response().boxed(),
        limits,
        local: address,
        shutdown,
        drain: DRAIN,
    });
    let task = tokio::spawn(accept_until_shutdown(listener, shared));
    tracing::info!(%address, "{name} listening");
    Ok(Server { address, task })
}

/// Accepts while fewer than `max_connections` are open, each served on a
/// task of its own; after shutdown, waits for them all to close.
async fn accept_until_shutdown(listener: Listener, shared: Arc<Shared>) -> io::Result<()> {
    let max = shared.limits.max_connections;
    let open = Arc::new(Semaphore::new(max as usize));
    let shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = async {
                let permit = Arc::clone(&open).acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
        };
        let (Ok(permit), (socket, remote)) = accepted else {
            break;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            connection::serve(socket, remote, shared).await;
            drop(permit);
        });
    }
    drop(listener);
    // Each connection gives up `DRAIN` after shutdown; a little more here
    // lets the last of them close before this reports.
    let all_closed = open.acquire_many(max);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), all_closed).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use poem::handler;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[handler]
    fn hello() -> &'static str {
        "hello"
    }

    #[tokio::test]
    async fn serves_on_the_port_it_got_until_shutdown() {
        let shutdown = CancellationToken::new();
        let server = serve("test", ([127, 0, 0, 1], 0).into(), hello, shutdown.clone())
            .await
            .unwrap();
        assert_ne!(server.address.port(), 0);
        let mut client = TcpStream::connect(server.address).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");

        let address = server.address;
        shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(20), server.stopped()).await;
        stopped.expect("the server stops after shutdown").unwrap();
        assert!(TcpStream::connect(address).await.is_err(), "it no longer listens");
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error() {
        let shutdown = CancellationToken::new();
        let first = serve("first", ([127, 0, 0, 1], 0).into(), hello, shutdown.clone())
            .await
            .unwrap();
        let second = serve("second", first.address, hello, shutdown.clone()).await;
        assert!(second.is_err());
        shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(20), first.stopped()).await;
        stopped.expect("the server stops after shutdown").unwrap();
    }
}
