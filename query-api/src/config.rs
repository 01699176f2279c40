//! Configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use api_common::verifier::{Verifier, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("JWT_PUBLIC_KEY: {0}")]
    Key(#[from] VerifyError),
}

pub struct Config {
    pub listen: SocketAddr,
    /// Verifies access tokens with the command API's public key.
    pub verifier: Verifier,
    /// How long a read waits for the views to reach a requested position.
    pub read_wait: Duration,
}

/// Reads `QUERY_API_ADDR`, `JWT_PUBLIC_KEY` (or `JWT_PUBLIC_KEY_FILE`),
/// `JWT_ISSUER`, `JWT_AUDIENCE` and `READ_WAIT_MS`.
pub fn from_env() -> Result<Config, ConfigError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let listen = var("QUERY_API_ADDR").unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listen = listen
        .parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
            name: "QUERY_API_ADDR",
            reason: e.to_string(),
        })?;
    let pem = match (var("JWT_PUBLIC_KEY"), var("JWT_PUBLIC_KEY_FILE")) {
        (Some(pem), _) => pem,
        (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
            name: "JWT_PUBLIC_KEY_FILE",
            reason: format!("{path}: {e}"),
        })?,
        (None, None) => return Err(ConfigError::Missing("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE")),
    };
    let issuer = var("JWT_ISSUER").unwrap_or_else(|| "shop".to_owned());
    let audience = var("JWT_AUDIENCE").unwrap_or_else(|| "shop".to_owned());
    let read_wait = var("READ_WAIT_MS").unwrap_or_else(|| "2000".to_owned());
    let read_wait = read_wait
        .parse()
        .map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
            name: "READ_WAIT_MS",
            reason: e.to_string(),
        })?;
    Ok(Config {
        listen,
        verifier: Verifier::from_pem(&pem, issuer, audience)?,
        read_wait: Duration::from_millis(read_wait),
    })
}
