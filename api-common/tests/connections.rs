//! The connection limits of `api_common::serve`, over real sockets: stalled
//! headers, slow drips and idle connections (HTTP/2 PINGs or not) are closed, the connection cap
//! holds further connections back until one closes, a request past its
//! deadline gets a 503, HTTP/2 advertises its stream cap, and shutdown
//! lets a request in flight finish.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_common::http_limits::HttpLimits;
use api_common::serve::{Server, serve_within};
use poem::{Route, get, handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Limits whose clocks are all too long to interfere, for a test to
/// shorten the one it is about.
fn patient() -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
        max_connections: 100,
        http2_max_streams: 100,
    }
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// Answers after 700 ms.
#[handler]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(700)).await;
    "slow"
}

/// The size of `/big`: more than the kernel's socket buffers hold, so the
/// server is still writing it while a slow client reads.
const BIG: usize = 16 * 1024 * 1024;

/// Answers `BIG` bytes at once (one piece of body).
#[handler]
fn big() -> Vec<u8> {
    vec![b'x'; BIG]
}

async fn start(limits: HttpLimits) -> (Server, CancellationToken) {
    let shutdown = CancellationToken::new();
    let routes = Route::new()
        .at("/", get(hello))
        .at("/slow", get(slow))
        .at("/big", get(big));
    let server = serve_within("test", ([127, 0, 0, 1], 0).into(), limits, routes, shutdown.clone())
        .await
        .unwrap();
    (server, shutdown)
}

/// How long until the server closes `client` (end of stream or reset),
/// reading and discarding whatever it sends; fails after `patience`.
async fn closed_after(client: &mut TcpStream, patience: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    loop {
        match timeout(patience, client.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("still open after {patience:?}"),
        }
    }
}

/// Sends `bytes` every 100 ms, reading whatever comes back, until the
/// server closes `client`; how long that took. Fails after 5 s.
async fn sending_until_closed(client: &mut TcpStream, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(5), "still open after 5 s");
        if client.write_all(bytes).await.is_err() {
            return started.elapsed();
        }
        let mut buffer = [0_u8; 1024];
        if let Ok(Ok(0) | Err(_)) = timeout(Duration::from_millis(100), client.read(&mut buffer)).await {
            return started.elapsed();
        }
    }
}

/// Sends a keep-alive `GET path` and reads its whole answer (the test
/// routes answer with a `content-length`).
async fn get_on(client: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let read = client.read(&mut buffer).await.unwrap();
        assert_ne!(read, 0, "closed mid-answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |value| value.trim().parse().unwrap());
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn half_a_request_line_is_closed_at_the_header_deadline() {
    let (server, _shutdown) = start(HttpLimits {
        header_timeout: Duration::from_millis(300),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    client.write_all(b"GET / HT").await.unwrap();
    let closed = closed_after(&mut client, Duration::from_secs(5)).await;
    assert!(closed >= Duration::from_millis(250), "closed after {closed:?}");
}

#[tokio::test]
async fn a_slow_drip_of_headers_is_closed_at_the_header_deadline() {
    let (server, _shutdown) = start(HttpLimits {
        header_timeout: Duration::from_millis(600),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // One byte every 100 ms: never quiet, never done.
    let closed = sending_until_closed(&mut client, b"x").await;
    assert!(closed >= Duration::from_millis(500), "closed after {closed:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (server, _shutdown) = start(HttpLimits {
        idle_timeout: Duration::from_millis(300),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let answer = get_on(&mut client, "/").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = closed_after(&mut client, Duration::from_secs(5)).await;
    assert!(closed >= Duration::from_millis(250), "closed after {closed:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_when_idle() {
    let (server, _shutdown) = start(HttpLimits {
        idle_timeout: Duration::from_millis(300),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let closed = closed_after(&mut client, Duration::from_secs(5)).await;
    assert!(closed >= Duration::from_millis(250), "closed after {closed:?}");
}

#[tokio::test]
async fn a_running_request_keeps_its_connection_from_idling() {
    let (server, _shutdown) = start(HttpLimits {
        idle_timeout: Duration::from_millis(200),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    // 700 ms without a byte either way, longer than the idle timeout.
    let answer = get_on(&mut client, "/slow").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow"), "{answer}");
    // Not closed for idleness while it ran: it serves the next request.
    assert!(get_on(&mut client, "/").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn pipelined_requests_in_the_first_segment_are_all_answered() {
    let (server, _shutdown) = start(patient()).await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    // Read ahead of hyper, then given back: nothing may be lost or doubled.
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\nGET /slow HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    assert!(answer.contains("hello") && answer.ends_with("slow"), "{answer}");
}

#[tokio::test]
async fn a_slow_download_outlasts_the_idle_timeout() {
    let (server, _shutdown) = start(HttpLimits {
        idle_timeout: Duration::from_millis(300),
        ..patient()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(server.address).await.unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    // 256 KiB every 40 ms: about 2.6 s for the whole body, many idle
    // timeouts long, with bytes flowing all the time.
    let started = Instant::now();
    let mut received = 0;
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut since_pause = 0;
    loop {
        let read = timeout(Duration::from_secs(5), client.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        if read == 0 {
            break;
        }
        received += read;
        since_pause += read;
        if since_pause >= 256 * 1024 {
            since_pause = 0;
            // Pacing the reader (not waiting for the server): the download
            // must take longer than the idle timeout.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        if received > BIG {
            break;
        }
    }
    let took = started.elapsed();
    assert!(took > Duration::from_millis(900), "the download took only {took:?}");
    assert!(
        received > BIG,
        "cut after {received} bytes of {BIG} (and its head), {took:?}"
    );
}

#[tokio::test]
async fn past_the_cap_a_connection_waits_until_another_closes() {
    let (server, _shutdown) = start(HttpLimits {
        max_connections: 2,
        ..patient()
    })
    .await;
    let mut first = TcpStream::connect(server.address).await.unwrap();
    let mut second = TcpStream::connect(server.address).await.unwrap();
    for client in [&mut first, &mut second] {
        assert!(get_on(client, "/").await.starts_with("HTTP/1.1 200"));
    }
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    let mut buffer = [0_u8; 256];
    let early = timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    drop(first);
    let read = timeout(Duration::from_secs(5), third.read(&mut buffer)).await;
    let read = read.expect("served once a connection closed").unwrap();
    assert!(
        buffer[..read].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..read])
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_a_503_problem_with_retry_after() {
    let (server, _shutdown) = start(HttpLimits {
        request_timeout: Duration::from_millis(200),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();
    let answer = get_on(&mut client, "/slow").await;
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "answered after {:?}",
        started.elapsed()
    );
    let lower = answer.to_ascii_lowercase();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(lower.contains("\r\ncontent-type: application/problem+json"), "{answer}");
    assert!(lower.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("\"type\":\"/problems/request-timeout\""), "{answer}");
    // The connection still serves.
    assert!(get_on(&mut client, "/").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn http2_advertises_its_stream_cap() {
    let (server, _shutdown) = start(HttpLimits {
        http2_max_streams: 7,
        ..patient()
    })
    .await;
    let settings = http2_settings(server.address).await;
    // SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113, 6.5.2).
    assert_eq!(
        settings.iter().find(|(id, _)| *id == 0x3),
        Some(&(0x3, 7)),
        "{settings:?}"
    );
}

#[tokio::test]
async fn http2_pings_do_not_keep_an_idle_connection_open() {
    let (server, _shutdown) = start(HttpLimits {
        idle_timeout: Duration::from_millis(300),
        ..patient()
    })
    .await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    client.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    client.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.unwrap();
    // A PING (RFC 9113, 6.7) every 100 ms: bytes move both ways, but no
    // request is ever made.
    let ping = [0, 0, 8, 0x6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let closed = sending_until_closed(&mut client, &ping).await;
    assert!(closed >= Duration::from_millis(250), "closed after {closed:?}");
}

/// The server's first SETTINGS frame, as (identifier, value) pairs, after
/// an HTTP/2 client preface (prior knowledge, no TLS).
async fn http2_settings(address: SocketAddr) -> Vec<(u16, u32)> {
    let mut client = TcpStream::connect(address).await.unwrap();
    // The preface, then an empty SETTINGS frame.
    client.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    client.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut header = [0_u8; 9];
    timeout(Duration::from_secs(5), client.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(header[3], 0x4, "the server speaks first with SETTINGS: {header:?}");
    let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0_u8; length];
    client.read_exact(&mut payload).await.unwrap();
    payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect()
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let started = Arc::new(Notify::new());
    let routes = poem::endpoint::make({
        let started = Arc::clone(&started);
        move |_| {
            let started = Arc::clone(&started);
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "finished"
            }
        }
    });
    let shutdown = CancellationToken::new();
    let server = serve_within("test", ([127, 0, 0, 1], 0).into(), patient(), routes, shutdown.clone())
        .await
        .unwrap();
    let mut client = TcpStream::connect(server.address).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    timeout(Duration::from_secs(5), started.notified()).await.unwrap();
    shutdown.cancel();
    let mut answer = String::new();
    timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    timeout(Duration::from_secs(5), server.stopped())
        .await
        .unwrap()
        .unwrap();
}
