//! Configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use api_common::verifier::Verifier;

pub struct Config {
    pub listen: SocketAddr,
    /// Verifies access tokens with the command API's public key.
    pub verifier: Verifier,
    /// How long a read waits for the views to reach a requested position.
    pub read_wait: Duration,
}

/// Reads `QUERY_API_ADDR`, `READ_WAIT_MS` and the token verification key
/// ([`Verifier::from_env`]); the error names the variable at fault.
pub fn from_env() -> Result<Config, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let listen = var("QUERY_API_ADDR").unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listen = listen
        .parse()
        .map_err(|e| format!("QUERY_API_ADDR is not valid: {e}"))?;
    let read_wait: u64 = var("READ_WAIT_MS")
        .unwrap_or_else(|| "2000".to_owned())
        .parse()
        .map_err(|e| format!("READ_WAIT_MS is not valid: {e}"))?;
    Ok(Config {
        listen,
        verifier: Verifier::from_env()?,
        read_wait: Duration::from_millis(read_wait),
    })
}
