//! The command API's configuration, read from the environment once: see
//! README.md, "Modes and configuration". Every default is declared here, once.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use api_common::config::{ConfigError, Env};
use api_common::verifier::TokenScope;

use crate::auth::tokens::SigningKey;
use crate::saga::SagaOptions;

/// Where the command API listens when `COMMAND_API_ADDR` is unset.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// Where the signing key comes from when none is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// Refuse to start: a separate command API must share its key with the
    /// query side across restarts.
    Refuse,
    /// Generate one: the local one-process mode, whose query side gets the
    /// public key in-process, and the saga alone, which signs nothing.
    Generate,
}

pub struct Config {
    /// The event store's URL (`EVENT_STORE_URL`).
    pub store_url: String,
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
    /// what tests and the spec generator start from, and what
    /// [`Config::from_env`] falls back to.
    pub fn with_defaults(listen: SocketAddr, signing_key: SigningKey) -> Self {
        let TokenScope { issuer, audience } = TokenScope::default();
        Self {
            store_url: event_store::DEFAULT_URL.to_owned(),
            listen,
            signing_key,
            issuer,
            audience,
            token_lifetime: Duration::from_secs(3600),
            admin: None,
            order_wait: Duration::from_secs(5),
            run_saga: true,
            saga: SagaOptions::default(),
        }
    }

    /// Reads `env`; the error names the variable at fault.
    pub fn from_env(env: &Env, missing_key: MissingKey) -> Result<Self, ConfigError> {
        let listen = env.parse_or("COMMAND_API_ADDR", DEFAULT_ADDR)?;
        let defaults = Self::with_defaults(listen, signing_key(env, missing_key)?);
        let TokenScope { issuer, audience } = TokenScope::from_env(env);
        Ok(Self {
            store_url: env.get_or("EVENT_STORE_URL", &defaults.store_url).to_owned(),
            issuer,
            audience,
            token_lifetime: env.seconds_or("JWT_TTL_SECONDS", defaults.token_lifetime)?,
            admin: admin(env)?,
            order_wait: env.millis_or("ORDER_WAIT_MS", defaults.order_wait)?,
            run_saga: env.parse_or("RUN_SAGA", defaults.run_saga)?,
            ..defaults
        })
    }
}

/// `JWT_PRIVATE_KEY` (PEM) or the file `JWT_PRIVATE_KEY_FILE` names.
fn signing_key(env: &Env, missing_key: MissingKey) -> Result<SigningKey, ConfigError> {
    let invalid = |e| ConfigError::invalid("JWT_PRIVATE_KEY", e);
    match env.value_or_file("JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE")? {
        Some(pem) => SigningKey::from_pem(&pem).map_err(invalid),
        None if missing_key == MissingKey::Generate => SigningKey::generate().map_err(invalid),
        None => Err(ConfigError::missing("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE")),
    }
}

/// `ADMIN_USERNAME` and `ADMIN_PASSWORD`: both or neither.
fn admin(env: &Env) -> Result<Option<(String, String)>, ConfigError> {
    match (env.get("ADMIN_USERNAME"), env.get("ADMIN_PASSWORD")) {
        (Some(username), Some(password)) => Ok(Some((username.to_owned(), password.to_owned()))),
        (None, None) => Ok(None),
        _ => Err(ConfigError {
            variable: "ADMIN_USERNAME and ADMIN_PASSWORD",
            problem: "go together: set both or neither".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ed25519 private key of RFC 8410, section 10.3.
    const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

    fn from_pairs(pairs: &[(&str, &str)], missing_key: MissingKey) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs.iter().copied()), missing_key)
    }

    fn error(pairs: &[(&str, &str)]) -> ConfigError {
        from_pairs(pairs, MissingKey::Generate)
            .err()
            .expect("the configuration is refused")
    }

    fn public_key_of(private_key: &str) -> String {
        SigningKey::from_pem(private_key).unwrap().public_key_pem()
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        let config = from_pairs(&[], MissingKey::Generate).unwrap();
        assert_eq!(config.store_url, "sqlite://data/events.db");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((config.issuer.as_str(), config.audience.as_str()), ("shop", "shop"));
        assert_eq!(config.token_lifetime, Duration::from_secs(3600));
        assert_eq!(config.admin, None);
        assert_eq!(config.order_wait, Duration::from_secs(5));
        assert!(config.run_saga);
    }

    #[test]
    fn every_variable_is_honoured() {
        let config = from_pairs(
            &[
                ("EVENT_STORE_URL", "esdb://events:2113?tls=false"),
                ("COMMAND_API_ADDR", "0.0.0.0:9000"),
                ("JWT_PRIVATE_KEY", PRIVATE_KEY),
                ("JWT_ISSUER", "accounts"),
                ("JWT_AUDIENCE", "shoppers"),
                ("JWT_TTL_SECONDS", "60"),
                ("ADMIN_USERNAME", "root"),
                ("ADMIN_PASSWORD", "secret"),
                ("ORDER_WAIT_MS", "250"),
                ("RUN_SAGA", "false"),
            ],
            MissingKey::Refuse,
        )
        .unwrap();
        assert_eq!(config.store_url, "esdb://events:2113?tls=false");
        assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.signing_key.public_key_pem(), public_key_of(PRIVATE_KEY));
        assert_eq!(
            (config.issuer.as_str(), config.audience.as_str()),
            ("accounts", "shoppers")
        );
        assert_eq!(config.token_lifetime, Duration::from_secs(60));
        assert_eq!(config.admin, Some(("root".to_owned(), "secret".to_owned())));
        assert_eq!(config.order_wait, Duration::from_millis(250));
        assert!(!config.run_saga);
    }

    #[test]
    fn the_private_key_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("command-api-private-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, PRIVATE_KEY).unwrap();
        let path_text = path.display().to_string();
        let config = from_pairs(&[("JWT_PRIVATE_KEY_FILE", &path_text)], MissingKey::Refuse);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(config.unwrap().signing_key.public_key_pem(), public_key_of(PRIVATE_KEY));
    }

    #[test]
    fn without_a_private_key_the_api_refuses_or_generates_one_as_asked() {
        let refused = from_pairs(&[], MissingKey::Refuse).err().unwrap();
        assert_eq!(
            refused.to_string(),
            "JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must be set"
        );
        let first = from_pairs(&[], MissingKey::Generate)
            .unwrap()
            .signing_key
            .public_key_pem();
        let second = from_pairs(&[], MissingKey::Generate)
            .unwrap()
            .signing_key
            .public_key_pem();
        assert_ne!(first, second, "each start makes up its own key");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, bad) in [
            ("COMMAND_API_ADDR", "localhost"),
            ("JWT_PRIVATE_KEY", "not a key"),
            ("JWT_PRIVATE_KEY_FILE", "/no/such/key.pem"),
            ("JWT_TTL_SECONDS", "an hour"),
            ("ORDER_WAIT_MS", "-1"),
            ("RUN_SAGA", "yes"),
        ] {
            let error = error(&[(variable, bad)]);
            assert_eq!(error.variable, variable, "{error}");
            assert!(
                error.to_string().starts_with(&format!("{variable} is not valid")),
                "{error}"
            );
        }
    }

    #[test]
    fn an_administrator_needs_both_name_and_password() {
        for half in ["ADMIN_USERNAME", "ADMIN_PASSWORD"] {
            assert_eq!(
                error(&[(half, "x")]).to_string(),
                "ADMIN_USERNAME and ADMIN_PASSWORD go together: set both or neither"
            );
        }
    }
}
