//! `healthcheck http://127.0.0.1:8081/health/ready`: exits 0 when the URL
//! answers 200, 1 otherwise. The containers' `HEALTHCHECK` runs it: the
//! runtime image (distroless) has no shell, no curl and no wget, and a
//! probe of the standard library alone is smaller than any of them.
//! Plain HTTP on a literal `host:port` only: it asks the service in its
//! own container.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// How long connecting, sending and reading may each take; Docker's own
/// `--timeout` bounds the whole probe as well.
const TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: healthcheck http://host:port/path");
        return ExitCode::from(2);
    };
    match probe(&url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok` when `GET url` answers 200.
fn probe(url: &str) -> Result<(), String> {
    let (authority, path) = split(url)?;
    let address = resolve(authority)?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&answer);
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("answered {:?}", status_line.lines().next().unwrap_or_default())),
    }
}

/// `http://host:port/path` as (`host:port`, `/path`).
fn split(url: &str) -> Result<(&str, &str), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are probed")?;
    Ok(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    })
}

fn resolve(authority: &str) -> Result<SocketAddr, String> {
    authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))
}
