//! Waiting for a connection's first request head before hyper takes the
//! connection. hyper gives every connection an 8 KiB read buffer and an
//! 8 KiB write buffer as soon as it starts serving it; thousands of
//! sockets that send half a request line and stall would hold those for
//! nothing. Until the head is complete (its empty line has arrived, or for
//! HTTP/2 the preface's), a connection holds only the bytes it sent, in a
//! buffer that starts at 512 bytes.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What a connection holds before its head grows it.
const FIRST_BUFFER: usize = 512;

/// The bytes of `socket` up to and past the end of its first request head,
/// read within `within`; `None` when the client closed, failed or ran out
/// of time first. After `most` bytes without an end, what arrived is
/// returned as it is, for hyper to refuse.
pub async fn read<S: AsyncRead + Unpin>(socket: &mut S, within: Duration, most: usize) -> Option<Bytes> {
    let deadline = tokio::time::Instant::now() + within;
    let mut head = BytesMut::with_capacity(FIRST_BUFFER);
    loop {
        if head.len() == head.capacity() {
            head.reserve(head.len());
        }
        let searched = head.len();
        match tokio::time::timeout_at(deadline, socket.read_buf(&mut head)).await {
            Ok(Ok(read)) if read > 0 => {}
            _ => return None,
        }
        if ends_a_head(&head, searched) || head.len() >= most {
            return Some(head.freeze());
        }
    }
}

/// Whether `bytes` hold an empty line (the end of an HTTP/1 head, which
/// may end its lines with CRLF or LF alone, or of HTTP/2's preface), looking
/// only at what arrived after the first `searched` bytes.
fn ends_a_head(bytes: &[u8], searched: usize) -> bool {
    let new = &bytes[searched.saturating_sub(2)..];
    new.windows(2).any(|pair| pair == b"\n\n") || new.windows(3).any(|three| three == b"\n\r\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn a_head_ends_at_its_empty_line() {
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", 0));
        assert!(ends_a_head(b"GET / HTTP/1.1\nhost: x\n\n", 0));
        assert!(ends_a_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0));
        assert!(!ends_a_head(b"GET / HTTP/1.1\r\nhost: x\r\n", 0));
        assert!(!ends_a_head(b"GET / HT", 0));
    }

    #[test]
    fn an_end_split_across_reads_is_found() {
        let head = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        for searched in 0..head.len() {
            assert!(ends_a_head(head, searched), "searched {searched}");
        }
    }

    #[tokio::test]
    async fn returns_the_head_and_what_came_with_it() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
        client.write_all(b"content-length: 2\r\n\r\nhi").await.unwrap();
        let head = read(&mut server, Duration::from_secs(5), 1024).await.unwrap();
        // The second write arrives whole (a duplex pipe), body included.
        assert_eq!(&head[..], b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi");
    }

    #[tokio::test]
    async fn a_stalled_head_runs_out_of_time() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"GET / HT").await.unwrap();
        assert_eq!(read(&mut server, Duration::from_millis(50), 1024).await, None);
    }

    #[tokio::test]
    async fn a_client_that_closes_first_gives_nothing() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"GET / HT").await.unwrap();
        drop(client);
        assert_eq!(read(&mut server, Duration::from_secs(5), 1024).await, None);
    }

    #[tokio::test]
    async fn a_head_too_long_is_handed_over_unfinished() {
        let (mut client, mut server) = tokio::io::duplex(8192);
        client.write_all(&[b'a'; 3000]).await.unwrap();
        let head = read(&mut server, Duration::from_secs(5), 2048).await.unwrap();
        assert!(head.len() >= 2048, "{}", head.len());
    }
}
