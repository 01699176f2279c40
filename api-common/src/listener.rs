//! The HTTP listener: TCP with `TCP_NODELAY` on every accepted connection,
//! and a pause after an accept error that is not the client's.
//!
//! Nagle's algorithm stays off: a response that ends in a partial segment
//! while the client delays its ACK would otherwise wait ~40 ms for that
//! ACK (the same stall `vendor/README.md` describes for sqlx).
//!
//! Out of descriptors (`EMFILE`), `accept` fails at once for as long as a
//! connection waits in the backlog; retrying at once spins a core. The
//! listener sleeps instead, 5 ms doubling to 1 s until an accept succeeds,
//! and logs once per such spell.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

pub struct Listener(TcpListener);

/// Connections the kernel holds ready for `accept` (capped by
/// `net.core.somaxconn`): where they wait while the server is at its
/// connection cap or out of descriptors. tokio's `bind` asks for 128.
const BACKLOG: u32 = 1024;

/// Listens on `address` (port 0 picks a free one).
pub async fn bind(address: SocketAddr) -> io::Result<Listener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(Listener(socket.listen(BACKLOG)?))
}

impl Listener {
    /// The address it listens on, with the port a port 0 was given.
    pub fn address(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// The next connection, with Nagle's algorithm off. Errors that
    /// concern one connection (reset before it was accepted) are skipped;
    /// others (out of descriptors or memory) pause the listener.
    pub async fn accept(&self) -> (TcpStream, SocketAddr) {
        let mut pause = Duration::ZERO;
        loop {
            match self.0.accept().await {
                Ok((stream, remote)) if stream.set_nodelay(true).is_ok() => return (stream, remote),
                Ok(_) => {}
                Err(error) if concerns_one_connection(&error) => {}
                Err(error) => {
                    if pause.is_zero() {
                        tracing::warn!(%error, "cannot accept connections; pausing up to 1 s between attempts");
                    }
                    pause = (pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let address = listener.address().unwrap();
        assert_ne!(address.port(), 0);
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
