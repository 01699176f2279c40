//! The projectors' configuration, read from the environment once: see
//! README.md, "Modes and configuration". Every default is declared here, once.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use api_common::config::{ConfigError, Env};
use api_common::http_limits::HttpLimits;
use api_common::verifier::{PublicKey, Verifier};

use crate::generations::pace::Pace;

/// Where the admin API listens when `PROJECTORS_ADMIN_ADDR` is unset.
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8082));

/// How long a projection's lease lasts on SQLite when
/// `PROJECTORS_LEASE_MS` is unset: how long a crashed instance's
/// projections wait for another (on Postgres a session lock decides, and
/// fail-over takes well under a second).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The shortest lease accepted: renewed every third of it, a shorter one
/// would lapse on a busy database's ordinary pauses.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// What `projectors run` reads.
pub struct Config {
    pub storage: Storage,
    /// The admin API, or `None` when `PROJECTORS_ADMIN_ADDR=off`.
    pub admin: Option<Admin>,
    /// Where the process serves its metrics alone (`METRICS_ADDR`); `None`:
    /// at `/metrics` on the admin API's port (so nowhere when it is off).
    pub metrics_addr: Option<SocketAddr>,
    /// How long a projection's lease lasts unless renewed
    /// (`PROJECTORS_LEASE_MS`).
    pub lease_ttl: Duration,
    /// How often an event a projection cannot read is tried before it is
    /// parked (`POISON_ATTEMPTS`).
    pub poison_attempts: u32,
    /// How long a projection this instance runs may stay behind the log
    /// head before the instance answers not ready
    /// (`SUBSCRIBER_LAG_LIMIT_MS`).
    pub lag_limit: Duration,
    /// How much of the time a rebuild the admin API starts may spend
    /// working (`REBUILD_BUSY_PERCENT`).
    pub rebuild_pace: Pace,
}

/// Where the log and the views are, and how long to wait for them: all
/// that the modes that serve no admin API (`migrate`, `replay`, `status`)
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The event store (`EVENT_STORE_URL`).
    pub store_url: String,
    /// The views' database (`VIEWS_DATABASE_URL`).
    pub views_url: String,
    /// Connections to it (`VIEWS_POOL_SIZE`), and how long taking one may
    /// take (`VIEWS_ACQUIRE_TIMEOUT_MS`). No statement timeout: a batch
    /// waits for the projection's lock as long as a replay holds it.
    pub pool: views::Pool,
    /// How long a start waits for the views database and the event store
    /// (`STARTUP_WAIT_MS`).
    pub startup_wait: Duration,
}

/// The admin API: where it listens and how it checks admin tokens.
pub struct Admin {
    pub listen: SocketAddr,
    pub verifier: Verifier,
    /// Its connections' limits (`HTTP_*`, shared by every service).
    pub http: HttpLimits,
}

impl Config {
    /// Reads `env`, with the admin API's public key as `key` says (read
    /// only when the admin API is on); the error names the variable at
    /// fault.
    pub fn from_env(env: &Env, key: PublicKey<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            storage: Storage::from_env(env)?,
            admin: Admin::from_env(env, key)?,
            metrics_addr: api_common::metrics::address(env)?,
            lease_ttl: lease_ttl(env)?,
            poison_attempts: poison_attempts(env)?,
            lag_limit: env.millis_or("SUBSCRIBER_LAG_LIMIT_MS", crate::instance::DEFAULT_LAG_LIMIT)?,
            rebuild_pace: rebuild_pace(env)?,
        })
    }
}

/// `REBUILD_BUSY_PERCENT`: the share of wall time a rebuild (or a
/// verification) may spend working, 1 to 100; it pauses the rest, leaving
/// the machine to the live projectors and to readers (`generations/pace.rs`).
pub fn rebuild_pace(env: &Env) -> Result<Pace, ConfigError> {
    let percent = env.parse_or("REBUILD_BUSY_PERCENT", crate::generations::pace::DEFAULT_BUSY_PERCENT)?;
    Pace::busy_percent(percent)
        .ok_or_else(|| ConfigError::invalid("REBUILD_BUSY_PERCENT", format!("{percent}: from 1 to 100")))
}

/// `POISON_ATTEMPTS`, at least 1.
pub fn poison_attempts(env: &Env) -> Result<u32, ConfigError> {
    let attempts = env.parse_or("POISON_ATTEMPTS", crate::quarantine::DEFAULT_POISON_ATTEMPTS)?;
    if attempts < 1 {
        return Err(ConfigError::invalid("POISON_ATTEMPTS", "0: at least 1"));
    }
    Ok(attempts)
}

/// `PROJECTORS_LEASE_MS`, at least [`MIN_LEASE`].
fn lease_ttl(env: &Env) -> Result<Duration, ConfigError> {
    let lease = env.millis_or("PROJECTORS_LEASE_MS", DEFAULT_LEASE)?;
    if lease < MIN_LEASE {
        return Err(ConfigError::invalid(
            "PROJECTORS_LEASE_MS",
            format!("{} ms: at least {} ms", lease.as_millis(), MIN_LEASE.as_millis()),
        ));
    }
    Ok(lease)
}

impl Storage {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store_url: env.get_or("EVENT_STORE_URL", event_store::DEFAULT_URL).to_owned(),
            views_url: env.get_or("VIEWS_DATABASE_URL", views::DEFAULT_URL).to_owned(),
            pool: views::Pool {
                size: env.parse_with("VIEWS_POOL_SIZE", |size| views::pool_size(size, views::cores()))?,
                acquire_timeout: env.positive_millis_or("VIEWS_ACQUIRE_TIMEOUT_MS", views::DEFAULT_ACQUIRE_TIMEOUT)?,
                statement_timeout: None,
            },
            startup_wait: api_common::startup_wait::startup_wait(env)?,
        })
    }
}

impl Admin {
    /// `PROJECTORS_ADMIN_ADDR` (`off` for no admin API) and, unless off,
    /// the verifier of admin tokens.
    fn from_env(env: &Env, key: PublicKey<'_>) -> Result<Option<Self>, ConfigError> {
        let listen = env.parse_with("PROJECTORS_ADMIN_ADDR", |value| match value {
            Some("off") => Ok(None),
            Some(address) => address
                .parse()
                .map(Some)
                .map_err(|e| format!("{address:?}: {e} (or set it to off)")),
            None => Ok(Some(DEFAULT_ADMIN_ADDR)),
        })?;
        let Some(listen) = listen else {
            return Ok(None);
        };
        let verifier = Verifier::from_env(env, key).map_err(|e| ConfigError {
            problem: format!(
                "{}: the admin API checks admin tokens with it (PROJECTORS_ADMIN_ADDR=off runs without the admin API)",
                e.problem
            ),
            ..e
        })?;
        let http = HttpLimits::from_env(env)?;
        Ok(Some(Self { listen, verifier, http }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use command_api::auth::tokens::{SigningKey, Tokens};
    use domain::account::Role;

    use super::*;

    fn from_pairs(pairs: &[(&str, &str)], key: PublicKey<'_>) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs.iter().copied()), key)
    }

    fn admin_token(key: &SigningKey, issuer: &str, audience: &str) -> String {
        let tokens = Tokens::new(
            key.clone(),
            issuer.to_owned(),
            audience.to_owned(),
            Duration::from_secs(60),
        );
        tokens
            .issue(uuid::Uuid::nil(), Role::Admin, 1, chrono::Utc::now())
            .unwrap()
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        let key = SigningKey::generate().unwrap();
        let public_key = key.public_key_pem();
        let config = from_pairs(&[("JWT_PUBLIC_KEY", &public_key)], PublicKey::FromEnv).unwrap();
        assert_eq!(
            config.storage,
            Storage {
                store_url: "sqlite://data/events.db".to_owned(),
                views_url: "sqlite://data/views.db?mode=rwc".to_owned(),
                pool: views::Pool {
                    size: views::pool_size(None, views::cores()).unwrap(),
                    acquire_timeout: Duration::from_secs(2),
                    statement_timeout: None,
                },
                startup_wait: Duration::from_secs(60),
            }
        );
        assert_eq!(config.metrics_addr, None);
        assert_eq!(config.lease_ttl, Duration::from_secs(10));
        assert_eq!(config.poison_attempts, 5);
        assert_eq!(config.lag_limit, Duration::from_secs(30));
        assert_eq!(config.rebuild_pace, Pace::busy_percent(35).unwrap());
        let admin = config.admin.expect("the admin API is on by default");
        assert_eq!(admin.listen, "127.0.0.1:8082".parse().unwrap());
        admin.verifier.verify(&admin_token(&key, "shop", "shop")).unwrap();
    }

    #[test]
    fn every_variable_is_honoured() {
        let key = SigningKey::generate().unwrap();
        let public_key = key.public_key_pem();
        let config = from_pairs(
            &[
                ("EVENT_STORE_URL", "esdb://events:2113?tls=false"),
                ("VIEWS_DATABASE_URL", "postgres://views@db/shop"),
                ("VIEWS_POOL_SIZE", "3"),
                ("VIEWS_ACQUIRE_TIMEOUT_MS", "700"),
                ("STARTUP_WAIT_MS", "1500"),
                ("PROJECTORS_ADMIN_ADDR", "0.0.0.0:9002"),
                ("JWT_PUBLIC_KEY", &public_key),
                ("JWT_ISSUER", "accounts"),
                ("JWT_AUDIENCE", "shoppers"),
                ("METRICS_ADDR", "0.0.0.0:9100"),
                ("PROJECTORS_LEASE_MS", "4000"),
                ("POISON_ATTEMPTS", "2"),
                ("SUBSCRIBER_LAG_LIMIT_MS", "1500"),
                ("REBUILD_BUSY_PERCENT", "30"),
            ],
            PublicKey::FromEnv,
        )
        .unwrap();
        assert_eq!(config.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        assert_eq!(config.lease_ttl, Duration::from_millis(4000));
        assert_eq!(config.poison_attempts, 2);
        assert_eq!(config.lag_limit, Duration::from_millis(1500));
        assert_eq!(config.rebuild_pace, Pace::busy_percent(30).unwrap());
        assert_eq!(
            config.storage,
            Storage {
                store_url: "esdb://events:2113?tls=false".to_owned(),
                views_url: "postgres://views@db/shop".to_owned(),
                pool: views::Pool {
                    size: 3,
                    acquire_timeout: Duration::from_millis(700),
                    statement_timeout: None,
                },
                startup_wait: Duration::from_millis(1500),
            }
        );
        let admin = config.admin.unwrap();
        assert_eq!(admin.listen, "0.0.0.0:9002".parse().unwrap());
        admin
            .verifier
            .verify(&admin_token(&key, "accounts", "shoppers"))
            .unwrap();
        assert!(admin.verifier.verify(&admin_token(&key, "shop", "shop")).is_err());
    }

    #[test]
    fn off_turns_the_admin_api_off_and_needs_no_key() {
        let config = from_pairs(&[("PROJECTORS_ADMIN_ADDR", "off")], PublicKey::FromEnv).unwrap();
        assert!(config.admin.is_none());
    }

    #[test]
    fn in_process_the_admin_key_is_given_rather_than_configured() {
        let key = SigningKey::generate().unwrap();
        let config = from_pairs(&[], PublicKey::InProcess(&key.public_key_pem())).unwrap();
        let admin = config.admin.unwrap();
        admin.verifier.verify(&admin_token(&key, "shop", "shop")).unwrap();
    }

    #[test]
    fn a_bad_or_missing_value_names_its_variable() {
        let public_key = SigningKey::generate().unwrap().public_key_pem();
        for (variable, bad) in [
            ("VIEWS_POOL_SIZE", "many"),
            ("VIEWS_ACQUIRE_TIMEOUT_MS", "0"),
            ("STARTUP_WAIT_MS", "a minute"),
            ("PROJECTORS_ADMIN_ADDR", "eighty-eighty-two"),
            ("METRICS_ADDR", "ninety-one-hundred"),
            ("PROJECTORS_LEASE_MS", "ten seconds"),
            ("PROJECTORS_LEASE_MS", "999"),
            ("POISON_ATTEMPTS", "0"),
            ("POISON_ATTEMPTS", "many"),
            ("SUBSCRIBER_LAG_LIMIT_MS", "half a minute"),
            ("REBUILD_BUSY_PERCENT", "0"),
            ("REBUILD_BUSY_PERCENT", "101"),
            ("REBUILD_BUSY_PERCENT", "half"),
            ("JWT_PUBLIC_KEY", "not a key"),
        ] {
            // The bad value replaces the good key where they share a name.
            let pairs = [("JWT_PUBLIC_KEY", public_key.as_str()), (variable, bad)];
            let error = from_pairs(&pairs, PublicKey::FromEnv).err().unwrap();
            assert_eq!(error.variable, variable, "{error}");
        }
        let error = from_pairs(&[], PublicKey::FromEnv).err().unwrap();
        assert!(
            error
                .to_string()
                .starts_with("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set: "),
            "{error}"
        );
        assert!(error.to_string().contains("PROJECTORS_ADMIN_ADDR=off"), "{error}");
    }
}
