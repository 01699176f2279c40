//! The HTTP listener: TCP with `TCP_NODELAY` on every accepted connection.
//!
//! poem leaves Nagle's algorithm on. A response that ends in a partial
//! segment while the client delays its ACK then waits ~40 ms for that ACK
//! (the same stall `vendor/README.md` describes for sqlx).

use std::io;
use std::net::SocketAddr;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

pub struct NoDelayAcceptor(TcpAcceptor);

/// Listens on `address` (port 0 picks a free one).
pub async fn bind(address: SocketAddr) -> io::Result<NoDelayAcceptor> {
    Ok(NoDelayAcceptor(TcpListener::bind(address).into_acceptor().await?))
}

impl NoDelayAcceptor {
    /// The address it listens on, with the port a port 0 was given.
    pub fn address(&self) -> Option<SocketAddr> {
        self.0
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
    }
}

impl Acceptor for NoDelayAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(TcpStream, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, local, remote, scheme))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let mut acceptor = bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let address = acceptor.address().unwrap();
        assert_ne!(address.port(), 0);
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, ..) = acceptor.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
