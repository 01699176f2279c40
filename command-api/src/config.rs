//! The command API's configuration, read from the environment once: see
//! README.md, "Modes and configuration". Every default is declared here, once.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use api_common::config::{ConfigError, Env};
use api_common::http_limits::HttpLimits;
use api_common::verification_key::VerificationKey;
use api_common::verifier::{MAX_TOKEN_LIFETIME, TokenScope};

use crate::auth::Budget;
use crate::auth::throttle::ThrottleConfig;
use crate::auth::tokens::SigningKey;
use crate::saga::SagaOptions;
use crate::webhook::WebhookSecret;

/// Where the command API listens when `COMMAND_API_ADDR` is unset.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// How many `POST /orders` wait for the saga at a time when
/// `ORDER_MAX_WAITERS` is unset: each holds a connection and a task for up
/// to `ORDER_WAIT_MS`, and a client polling its pending order costs less.
pub const DEFAULT_MAX_ORDER_WAITERS: usize = 1024;

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
    /// Keys that signed before a rotation, still verified and published
    /// (`JWT_PREVIOUS_PUBLIC_KEYS`).
    pub previous_keys: Vec<VerificationKey>,
    pub issuer: String,
    pub audience: String,
    pub token_lifetime: Duration,
    /// The administrator that exists after start-up, if configured.
    pub admin: Option<(String, String)>,
    /// How long `POST /orders` waits for the saga's decision.
    pub order_wait: Duration,
    /// How many `POST /orders` may wait for it at a time; the others answer
    /// 202 pending at once.
    pub max_order_waiters: usize,
    /// Where the process serves its metrics alone (`METRICS_ADDR`); `None`:
    /// at `/metrics` on the API's port.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether this process also runs the order saga.
    pub run_saga: bool,
    pub saga: SagaOptions,
    /// Login and registration budgets (`LOGIN_*`, `REGISTRATIONS_*`,
    /// `THROTTLE_KEYS`).
    pub throttle: ThrottleConfig,
    /// How many password hashes may wait for a hashing thread
    /// (`PASSWORD_HASH_QUEUE`); past it logins and registrations answer 503.
    pub hash_queue: usize,
    /// Its connections' limits (`HTTP_*`, shared by every service).
    pub http: HttpLimits,
    /// The secret payment webhooks are signed with
    /// (`PAYMENT_WEBHOOK_SECRET`); `None`: webhooks are refused and only
    /// administrators settle payments.
    pub payment_webhook_secret: Option<WebhookSecret>,
    /// How long a start waits for the event store to answer
    /// (`STARTUP_WAIT_MS`).
    pub startup_wait: Duration,
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
            previous_keys: Vec::new(),
            issuer,
            audience,
            token_lifetime: Duration::from_secs(3600),
            admin: None,
            order_wait: Duration::from_secs(5),
            max_order_waiters: DEFAULT_MAX_ORDER_WAITERS,
            metrics_addr: None,
            run_saga: true,
            saga: SagaOptions::default(),
            throttle: ThrottleConfig {
                login_per_username: Budget {
                    burst: 5,
                    refill: Duration::from_secs(60),
                },
                login_per_address: Budget {
                    burst: 50,
                    refill: Duration::from_secs(1),
                },
                register_per_address: Budget {
                    burst: 100,
                    refill: Duration::from_secs(10),
                },
                capacity: 100_000,
            },
            hash_queue: 32,
            http: HttpLimits::default(),
            payment_webhook_secret: None,
            startup_wait: api_common::startup_wait::DEFAULT_STARTUP_WAIT,
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
            previous_keys: api_common::verifier::previous_keys(env)?,
            token_lifetime: token_lifetime(env, defaults.token_lifetime)?,
            admin: admin(env)?,
            order_wait: env.millis_or("ORDER_WAIT_MS", defaults.order_wait)?,
            max_order_waiters: env.parse_or("ORDER_MAX_WAITERS", defaults.max_order_waiters)?,
            metrics_addr: api_common::metrics::address(env)?,
            run_saga: env.parse_or("RUN_SAGA", defaults.run_saga)?,
            saga: saga_options(env, &defaults.saga)?,
            throttle: throttle(env, &defaults.throttle)?,
            hash_queue: env.parse_or("PASSWORD_HASH_QUEUE", defaults.hash_queue)?,
            http: HttpLimits::from_env(env)?,
            payment_webhook_secret: payment_webhook_secret(env)?,
            startup_wait: api_common::startup_wait::startup_wait(env)?,
            ..defaults
        })
    }
}

/// The saga's quarantine settings, shared with the projectors:
/// `POISON_ATTEMPTS` (at least 1) and `SUBSCRIBER_LAG_LIMIT_MS`; and the
/// saga's own order limits: `ORDER_PAYMENT_WINDOW` and
/// `MAX_UNSETTLED_ORDERS` (at least 1).
fn saga_options(env: &Env, defaults: &SagaOptions) -> Result<SagaOptions, ConfigError> {
    let poison_attempts = env.parse_or("POISON_ATTEMPTS", defaults.poison_attempts)?;
    if poison_attempts == 0 {
        return Err(ConfigError::invalid(
            "POISON_ATTEMPTS",
            "0: an event is tried at least once",
        ));
    }
    let max_unsettled = env.parse_or("MAX_UNSETTLED_ORDERS", defaults.max_unsettled)?;
    if max_unsettled == 0 {
        return Err(ConfigError::invalid(
            "MAX_UNSETTLED_ORDERS",
            "0: a customer may have at least one order waiting",
        ));
    }
    Ok(SagaOptions {
        poison_attempts,
        lag_limit: env.millis_or("SUBSCRIBER_LAG_LIMIT_MS", defaults.lag_limit)?,
        payment_window: payment_window(env, defaults.payment_window)?,
        max_unsettled,
        ..defaults.clone()
    })
}

/// `ORDER_PAYMENT_WINDOW`, a duration with its unit (`30m`, `90s`, `2h`,
/// `1500ms`): a bare number could be read as seconds or minutes alike.
fn payment_window(env: &Env, default: chrono::TimeDelta) -> Result<chrono::TimeDelta, ConfigError> {
    env.parse_with("ORDER_PAYMENT_WINDOW", |raw| {
        let Some(raw) = raw else { return Ok(default) };
        let window = humantime::parse_duration(raw).map_err(|e| format!("{raw:?}: {e} (a duration such as 30m)"))?;
        if window.is_zero() {
            return Err("0: an order must have time to be paid".to_owned());
        }
        chrono::TimeDelta::from_std(window).map_err(|_| format!("{raw:?} is too long"))
    })
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

/// `PAYMENT_WEBHOOK_SECRET` or the file `PAYMENT_WEBHOOK_SECRET_FILE`
/// names, at least [`WebhookSecret::MIN_BYTES`] bytes; unset is allowed.
fn payment_webhook_secret(env: &Env) -> Result<Option<WebhookSecret>, ConfigError> {
    env.value_or_file("PAYMENT_WEBHOOK_SECRET", "PAYMENT_WEBHOOK_SECRET_FILE")?
        .map(|raw| WebhookSecret::parse(&raw).map_err(|e| ConfigError::invalid("PAYMENT_WEBHOOK_SECRET", e)))
        .transpose()
}

/// `JWT_TTL_SECONDS`, at most [`MAX_TOKEN_LIFETIME`]: verifiers refuse
/// longer-lived tokens, and a stolen token must not outlive a day.
fn token_lifetime(env: &Env, default: Duration) -> Result<Duration, ConfigError> {
    let lifetime = env.seconds_or("JWT_TTL_SECONDS", default)?;
    if lifetime > MAX_TOKEN_LIFETIME {
        return Err(ConfigError::invalid(
            "JWT_TTL_SECONDS",
            format!(
                "{} s is above the {} s maximum",
                lifetime.as_secs(),
                MAX_TOKEN_LIFETIME.as_secs()
            ),
        ));
    }
    Ok(lifetime)
}

/// The login and registration budgets; a burst is at least 1, a refill of
/// 0 seconds turns its budget off.
fn throttle(env: &Env, defaults: &ThrottleConfig) -> Result<ThrottleConfig, ConfigError> {
    Ok(ThrottleConfig {
        login_per_username: budget(
            env,
            ("LOGIN_FAILURES_PER_USERNAME", "LOGIN_USERNAME_REFILL_SECONDS"),
            defaults.login_per_username,
        )?,
        login_per_address: budget(
            env,
            ("LOGIN_FAILURES_PER_ADDRESS", "LOGIN_ADDRESS_REFILL_SECONDS"),
            defaults.login_per_address,
        )?,
        register_per_address: budget(
            env,
            ("REGISTRATIONS_PER_ADDRESS", "REGISTRATION_REFILL_SECONDS"),
            defaults.register_per_address,
        )?,
        capacity: env.parse_or("THROTTLE_KEYS", defaults.capacity)?,
    })
}

/// One budget: its burst and refill variables, or `default`'s.
fn budget(env: &Env, (burst, refill): (&'static str, &'static str), default: Budget) -> Result<Budget, ConfigError> {
    let budget = Budget {
        burst: env.parse_or(burst, default.burst)?,
        refill: env.seconds_or(refill, default.refill)?,
    };
    if budget.burst == 0 {
        return Err(ConfigError::invalid(burst, "0: at least one attempt must be allowed"));
    }
    // A bucket computes `now + refill * burst`: keep that far from overflow.
    if budget.refill > MAX_REFILL {
        let days = MAX_REFILL.as_secs() / 86_400;
        return Err(ConfigError::invalid(refill, format!("above the {days}-day maximum")));
    }
    Ok(budget)
}

/// The longest refill a throttle budget may have: a year.
const MAX_REFILL: Duration = Duration::from_secs(365 * 86_400);

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
        assert_eq!(config.max_order_waiters, 1024);
        assert_eq!(config.startup_wait, Duration::from_secs(60));
        assert_eq!(config.metrics_addr, None);
        assert!(config.run_saga);
    }

    #[test]
    fn the_quarantine_settings_are_read_and_checked() {
        let config = from_pairs(&[], MissingKey::Generate).unwrap();
        assert_eq!(config.saga.poison_attempts, 5);
        assert_eq!(config.saga.lag_limit, Duration::from_secs(30));
        let pairs = [("POISON_ATTEMPTS", "2"), ("SUBSCRIBER_LAG_LIMIT_MS", "1500")];
        let config = from_pairs(&pairs, MissingKey::Generate).unwrap();
        assert_eq!(config.saga.poison_attempts, 2);
        assert_eq!(config.saga.lag_limit, Duration::from_millis(1500));
        assert!(
            error(&[("POISON_ATTEMPTS", "0")])
                .to_string()
                .starts_with("POISON_ATTEMPTS")
        );
    }

    #[test]
    fn the_order_limits_are_read_and_checked() {
        let config = from_pairs(&[], MissingKey::Generate).unwrap();
        assert_eq!(config.saga.payment_window, chrono::TimeDelta::minutes(30));
        assert_eq!(config.saga.max_unsettled, 5);
        for (window, expected) in [
            ("30m", chrono::TimeDelta::minutes(30)),
            ("90s", chrono::TimeDelta::seconds(90)),
            ("2h", chrono::TimeDelta::hours(2)),
            ("1500ms", chrono::TimeDelta::milliseconds(1500)),
        ] {
            let pairs = [("ORDER_PAYMENT_WINDOW", window), ("MAX_UNSETTLED_ORDERS", "1")];
            let config = from_pairs(&pairs, MissingKey::Generate).unwrap();
            assert_eq!(config.saga.payment_window, expected, "{window}");
            assert_eq!(config.saga.max_unsettled, 1);
        }
        for (variable, bad) in [
            ("ORDER_PAYMENT_WINDOW", "30"),
            ("ORDER_PAYMENT_WINDOW", "0s"),
            ("ORDER_PAYMENT_WINDOW", "-5m"),
            ("ORDER_PAYMENT_WINDOW", "soon"),
            ("ORDER_PAYMENT_WINDOW", "100000000000000000h"),
            ("MAX_UNSETTLED_ORDERS", "0"),
            ("MAX_UNSETTLED_ORDERS", "-1"),
            ("MAX_UNSETTLED_ORDERS", "five"),
        ] {
            let error = error(&[(variable, bad)]);
            assert_eq!(error.variable, variable, "{bad}: {error}");
            assert!(
                error.to_string().starts_with(&format!("{variable} is not valid")),
                "{error}"
            );
        }
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
                ("ORDER_MAX_WAITERS", "7"),
                ("METRICS_ADDR", "0.0.0.0:9100"),
                ("RUN_SAGA", "false"),
                ("STARTUP_WAIT_MS", "1500"),
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
        assert_eq!(config.max_order_waiters, 7);
        assert_eq!(config.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        assert!(!config.run_saga);
        assert_eq!(config.startup_wait, Duration::from_millis(1500));
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
            ("ORDER_MAX_WAITERS", "many"),
            ("METRICS_ADDR", "metrics:9100"),
            ("RUN_SAGA", "yes"),
            ("STARTUP_WAIT_MS", "a minute"),
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
    fn a_token_lifetime_above_the_maximum_is_refused_and_previous_keys_are_read() {
        let max = MAX_TOKEN_LIFETIME.as_secs();
        let longest = from_pairs(&[("JWT_TTL_SECONDS", &max.to_string())], MissingKey::Generate).unwrap();
        assert_eq!(longest.token_lifetime, MAX_TOKEN_LIFETIME);
        let error = error(&[("JWT_TTL_SECONDS", &(max + 1).to_string())]);
        assert_eq!(error.variable, "JWT_TTL_SECONDS", "{error}");
        let previous = public_key_of(PRIVATE_KEY);
        let config = from_pairs(&[("JWT_PREVIOUS_PUBLIC_KEYS", &previous)], MissingKey::Generate).unwrap();
        assert_eq!(config.previous_keys.len(), 1);
        assert_eq!(config.previous_keys[0].pem(), previous);
    }

    #[test]
    fn the_login_defences_have_defaults_and_read_their_variables() {
        let defaults = from_pairs(&[], MissingKey::Generate).unwrap();
        assert_eq!(defaults.throttle.login_per_username.burst, 5);
        assert_eq!(defaults.throttle.login_per_address.refill, Duration::from_secs(1));
        assert_eq!(defaults.hash_queue, 32);
        let config = from_pairs(
            &[
                ("LOGIN_FAILURES_PER_USERNAME", "3"),
                ("LOGIN_USERNAME_REFILL_SECONDS", "600"),
                ("LOGIN_FAILURES_PER_ADDRESS", "20"),
                ("LOGIN_ADDRESS_REFILL_SECONDS", "0"),
                ("REGISTRATIONS_PER_ADDRESS", "4"),
                ("REGISTRATION_REFILL_SECONDS", "3600"),
                ("THROTTLE_KEYS", "1000"),
                ("PASSWORD_HASH_QUEUE", "0"),
            ],
            MissingKey::Generate,
        )
        .unwrap();
        let budget = |burst, seconds| Budget {
            burst,
            refill: Duration::from_secs(seconds),
        };
        assert_eq!(
            config.throttle,
            ThrottleConfig {
                login_per_username: budget(3, 600),
                login_per_address: budget(20, 0),
                register_per_address: budget(4, 3600),
                capacity: 1000,
            }
        );
        assert_eq!(config.hash_queue, 0);
        for variable in ["LOGIN_FAILURES_PER_USERNAME", "REGISTRATIONS_PER_ADDRESS"] {
            assert_eq!(error(&[(variable, "0")]).variable, variable);
        }
        assert_eq!(error(&[("PASSWORD_HASH_QUEUE", "-1")]).variable, "PASSWORD_HASH_QUEUE");
        // A refill so long that a bucket's clock would overflow stops the start.
        let far = error(&[("LOGIN_USERNAME_REFILL_SECONDS", "18446744073709551615")]);
        assert_eq!(far.variable, "LOGIN_USERNAME_REFILL_SECONDS");
        assert!(
            from_pairs(
                &[("REGISTRATION_REFILL_SECONDS", &(365 * 86_400).to_string())],
                MissingKey::Generate
            )
            .is_ok(),
            "a year is allowed"
        );
    }

    #[test]
    fn the_payment_webhook_secret_is_optional_and_at_least_32_bytes() {
        assert!(
            from_pairs(&[], MissingKey::Generate)
                .unwrap()
                .payment_webhook_secret
                .is_none()
        );
        let secret = "s".repeat(32);
        let config = from_pairs(&[("PAYMENT_WEBHOOK_SECRET", &secret)], MissingKey::Generate).unwrap();
        assert_eq!(config.payment_webhook_secret.unwrap().as_bytes(), secret.as_bytes());
        let short = error(&[("PAYMENT_WEBHOOK_SECRET", &"s".repeat(31))]);
        assert_eq!(short.variable, "PAYMENT_WEBHOOK_SECRET", "{short}");
        assert!(!short.to_string().contains("sss"), "the secret is not printed: {short}");
        let path = std::env::temp_dir().join(format!("command-api-webhook-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        let path_text = path.display().to_string();
        let config = from_pairs(&[("PAYMENT_WEBHOOK_SECRET_FILE", &path_text)], MissingKey::Generate);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            config.unwrap().payment_webhook_secret.unwrap().as_bytes(),
            secret.as_bytes()
        );
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
