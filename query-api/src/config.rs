//! The query API's configuration, read from the environment once: see
//! README.md, "Modes and configuration". Every default is declared here, once.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use api_common::config::{ConfigError, Env};
use api_common::http_limits::HttpLimits;
use api_common::verifier::{PublicKey, Verifier};

/// Where the query API listens when `QUERY_API_ADDR` is unset.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8081));
/// How long a read waits for `minPosition` when `READ_WAIT_MS` is unset.
pub const DEFAULT_READ_WAIT: Duration = Duration::from_secs(2);
/// How many reads wait for `minPosition` at a time when `READ_MAX_WAITERS`
/// is unset: each holds a connection and a task for up to `READ_WAIT_MS`,
/// and past the cap a read answers 503 with `Retry-After` at once.
pub const DEFAULT_MAX_READ_WAITERS: usize = 1024;

pub struct Config {
    /// The views' database (`VIEWS_DATABASE_URL`).
    pub views_url: String,
    /// Connections to it (`VIEWS_POOL_SIZE`) and how long a read waits on
    /// it: for a connection (`VIEWS_ACQUIRE_TIMEOUT_MS`), for a statement
    /// on Postgres (`VIEWS_STATEMENT_TIMEOUT_MS`).
    pub pool: views::Pool,
    /// How long a start waits for the views database and its schema
    /// (`STARTUP_WAIT_MS`).
    pub startup_wait: Duration,
    pub listen: SocketAddr,
    /// Verifies access tokens with the command API's public key.
    pub verifier: Verifier,
    /// How long a read waits for the views to reach a requested position.
    pub read_wait: Duration,
    /// Its connections' limits (`HTTP_*`, shared by every service).
    pub http: HttpLimits,
    /// How many reads may wait for a position at a time.
    pub max_read_waiters: usize,
    /// Where the process serves its metrics alone (`METRICS_ADDR`); `None`:
    /// at `/metrics` on the API's port.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// Reads `env`, with the public key as `key` says; the error names the
    /// variable at fault.
    pub fn from_env(env: &Env, key: PublicKey<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            views_url: env.get_or("VIEWS_DATABASE_URL", views::DEFAULT_URL).to_owned(),
            pool: pool(env)?,
            startup_wait: api_common::startup_wait::startup_wait(env)?,
            listen: env.parse_or("QUERY_API_ADDR", DEFAULT_ADDR)?,
            verifier: Verifier::from_env(env, key)?,
            read_wait: env.millis_or("READ_WAIT_MS", DEFAULT_READ_WAIT)?,
            http: HttpLimits::from_env(env)?,
            max_read_waiters: env.parse_or("READ_MAX_WAITERS", DEFAULT_MAX_READ_WAITERS)?,
            metrics_addr: api_common::metrics::address(env)?,
        })
    }
}

/// The read pool: `VIEWS_POOL_SIZE`, `VIEWS_ACQUIRE_TIMEOUT_MS`,
/// `VIEWS_STATEMENT_TIMEOUT_MS`.
fn pool(env: &Env) -> Result<views::Pool, ConfigError> {
    Ok(views::Pool {
        size: env.parse_with("VIEWS_POOL_SIZE", |size| views::pool_size(size, views::cores()))?,
        acquire_timeout: env.positive_millis_or("VIEWS_ACQUIRE_TIMEOUT_MS", views::DEFAULT_ACQUIRE_TIMEOUT)?,
        statement_timeout: Some(
            env.positive_millis_or("VIEWS_STATEMENT_TIMEOUT_MS", views::DEFAULT_STATEMENT_TIMEOUT)?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use command_api::auth::tokens::{SigningKey, Tokens};
    use domain::account::Role;

    use super::*;

    fn from_pairs(pairs: &[(&str, &str)], key: PublicKey<'_>) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs.iter().copied()), key)
    }

    /// A token `key` signs for `issuer` and `audience`.
    fn token(key: &SigningKey, issuer: &str, audience: &str) -> String {
        let tokens = Tokens::new(
            key.clone(),
            issuer.to_owned(),
            audience.to_owned(),
            Duration::from_secs(60),
        );
        tokens
            .issue(uuid::Uuid::nil(), Role::Customer, 1, chrono::Utc::now())
            .unwrap()
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        let key = SigningKey::generate().unwrap();
        let public_key = key.public_key_pem();
        let config = from_pairs(&[("JWT_PUBLIC_KEY", &public_key)], PublicKey::FromEnv).unwrap();
        assert_eq!(config.views_url, "sqlite://data/views.db?mode=rwc");
        assert_eq!(
            config.pool,
            views::Pool {
                size: views::pool_size(None, views::cores()).unwrap(),
                acquire_timeout: Duration::from_secs(2),
                statement_timeout: Some(Duration::from_secs(5)),
            }
        );
        assert_eq!(config.startup_wait, Duration::from_secs(60));
        assert_eq!(config.listen, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(config.read_wait, Duration::from_secs(2));
        assert_eq!(config.max_read_waiters, 1024);
        assert_eq!(config.metrics_addr, None);
        config.verifier.verify(&token(&key, "shop", "shop")).unwrap();
    }

    #[test]
    fn every_variable_is_honoured() {
        let key = SigningKey::generate().unwrap();
        let public_key = key.public_key_pem();
        let config = from_pairs(
            &[
                ("VIEWS_DATABASE_URL", "postgres://views@db/shop"),
                ("VIEWS_POOL_SIZE", "3"),
                ("VIEWS_ACQUIRE_TIMEOUT_MS", "700"),
                ("VIEWS_STATEMENT_TIMEOUT_MS", "900"),
                ("STARTUP_WAIT_MS", "1500"),
                ("QUERY_API_ADDR", "0.0.0.0:9001"),
                ("JWT_PUBLIC_KEY", &public_key),
                ("JWT_ISSUER", "accounts"),
                ("JWT_AUDIENCE", "shoppers"),
                ("READ_WAIT_MS", "150"),
                ("READ_MAX_WAITERS", "9"),
                ("METRICS_ADDR", "0.0.0.0:9100"),
            ],
            PublicKey::FromEnv,
        )
        .unwrap();
        assert_eq!(config.views_url, "postgres://views@db/shop");
        assert_eq!(
            config.pool,
            views::Pool {
                size: 3,
                acquire_timeout: Duration::from_millis(700),
                statement_timeout: Some(Duration::from_millis(900)),
            }
        );
        assert_eq!(config.startup_wait, Duration::from_millis(1500));
        assert_eq!(config.listen, "0.0.0.0:9001".parse().unwrap());
        assert_eq!(config.read_wait, Duration::from_millis(150));
        assert_eq!(config.max_read_waiters, 9);
        assert_eq!(config.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        config.verifier.verify(&token(&key, "accounts", "shoppers")).unwrap();
        assert!(config.verifier.verify(&token(&key, "shop", "shop")).is_err());
        let stranger = SigningKey::generate().unwrap();
        assert!(
            config
                .verifier
                .verify(&token(&stranger, "accounts", "shoppers"))
                .is_err()
        );
    }

    #[test]
    fn in_process_the_key_is_given_rather_than_configured() {
        let key = SigningKey::generate().unwrap();
        let config = from_pairs(&[], PublicKey::InProcess(&key.public_key_pem())).unwrap();
        config.verifier.verify(&token(&key, "shop", "shop")).unwrap();
    }

    #[test]
    fn a_bad_or_missing_value_names_its_variable() {
        let public_key = SigningKey::generate().unwrap().public_key_pem();
        for (variable, bad) in [
            ("VIEWS_POOL_SIZE", "0"),
            ("VIEWS_ACQUIRE_TIMEOUT_MS", "0"),
            ("VIEWS_STATEMENT_TIMEOUT_MS", "soon"),
            ("STARTUP_WAIT_MS", "a minute"),
            ("QUERY_API_ADDR", "localhost:8081"),
            ("READ_WAIT_MS", "2s"),
            ("READ_MAX_WAITERS", "-1"),
            ("METRICS_ADDR", "nowhere"),
            ("JWT_PUBLIC_KEY", "not a key"),
        ] {
            // The bad value replaces the good key where they share a name.
            let pairs = [("JWT_PUBLIC_KEY", public_key.as_str()), (variable, bad)];
            let error = from_pairs(&pairs, PublicKey::FromEnv).err().unwrap();
            assert_eq!(error.variable, variable, "{error}");
        }
        let error = from_pairs(&[], PublicKey::FromEnv).err().unwrap();
        assert_eq!(error.to_string(), "JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set");
    }
}
