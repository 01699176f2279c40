//! Configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::tokens::{KeyError, SigningKey};
use crate::saga::SagaOptions;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("ADMIN_USERNAME and ADMIN_PASSWORD go together: set both or neither")]
    HalfAnAdmin,
    #[error("JWT_PRIVATE_KEY: {0}")]
    Key(#[from] KeyError),
}

/// Where the signing key comes from when none is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// Refuse to start: a separate command API must share its key with the
    /// query side across restarts.
    Refuse,
    /// Generate one: the local one-process mode, whose query side gets the
    /// public key in-process.
    Generate,
}

pub struct Config {
    pub listen: SocketAddr,
    pub signing_key: SigningKey,
    pub issuer: String,
    pub audience: String,
    pub token_lifetime: Duration,
    /// The administrator that exists after start-up, if configured.
    pub admin: Option<(String, String)>,
    /// How long `POST /orders` waits for the saga's decision.
    pub order_wait: Duration,
    /// Whether this process also runs the order saga.
    pub run_saga: bool,
    pub saga: SagaOptions,
}

impl Config {
    /// The defaults, listening on `listen` and signing with `signing_key`:
    /// what tests and the spec generator start from.
    pub fn with_defaults(listen: SocketAddr, signing_key: SigningKey) -> Self {
        Self {
            listen,
            signing_key,
            issuer: "shop".to_owned(),
            audience: "shop".to_owned(),
            token_lifetime: Duration::from_secs(3600),
            admin: None,
            order_wait: Duration::from_secs(5),
            run_saga: true,
            saga: SagaOptions::default(),
        }
    }
}

/// Reads the environment: see README.md, "Configuration".
pub fn from_env(missing_key: MissingKey) -> Result<Config, ConfigError> {
    let listen = parse_or("COMMAND_API_ADDR", "127.0.0.1:8080")?;
    let signing_key = match (var("JWT_PRIVATE_KEY"), var("JWT_PRIVATE_KEY_FILE")) {
        (Some(pem), _) => SigningKey::from_pem(&pem)?,
        (None, Some(path)) => {
            let pem = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                name: "JWT_PRIVATE_KEY_FILE",
                reason: format!("{path}: {e}"),
            })?;
            SigningKey::from_pem(&pem)?
        }
        (None, None) if missing_key == MissingKey::Generate => SigningKey::generate()?,
        (None, None) => return Err(ConfigError::Missing("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE")),
    };
    let admin = match (var("ADMIN_USERNAME"), var("ADMIN_PASSWORD")) {
        (Some(username), Some(password)) => Some((username, password)),
        (None, None) => None,
        _ => return Err(ConfigError::HalfAnAdmin),
    };
    Ok(Config {
        listen,
        signing_key,
        issuer: var("JWT_ISSUER").unwrap_or_else(|| "shop".to_owned()),
        audience: var("JWT_AUDIENCE").unwrap_or_else(|| "shop".to_owned()),
        token_lifetime: Duration::from_secs(parse_or("JWT_TTL_SECONDS", "3600")?),
        admin,
        order_wait: Duration::from_millis(parse_or("ORDER_WAIT_MS", "5000")?),
        run_saga: parse_or("RUN_SAGA", "true")?,
        saga: SagaOptions::default(),
    })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn parse_or<T>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = var(name).unwrap_or_else(|| default.to_owned());
    raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
        name,
        reason: format!("{raw:?}: {e}"),
    })
}
