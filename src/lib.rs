//! Shop in one process (`cargo run`): the configuration of the command
//! API, the query API and the projectors, each read by the service's own
//! `Config::from_env`, composed. The binary (`src/main.rs`) starts each
//! service with its own part.

use std::net::SocketAddr;

use api_common::config::{ConfigError, Env};
use api_common::verifier::PublicKey;
use command_api::config::MissingKey;

/// What `cargo run` starts.
pub struct Config {
    pub command: command_api::config::Config,
    pub query: query_api::config::Config,
    pub projectors: projectors::config::Config,
    /// Where the process serves the metrics of all three alone
    /// (`METRICS_ADDR`, one address per process); `None`: on each port.
    pub metrics_addr: Option<SocketAddr>,
    /// The local administrator's password when it was made up for this run
    /// (no `ADMIN_USERNAME` / `ADMIN_PASSWORD`), to print.
    pub generated_password: Option<String>,
}

impl Config {
    /// Reads `env` through each service's configuration. The signing key is
    /// generated unless configured, and the query API and the projectors'
    /// admin API verify tokens with its public key: no other key could
    /// verify this command API's tokens. Locally an administrator always
    /// exists: the configured one, or `admin` with a password made up for
    /// this run (there is no default password).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mut command = command_api::config::Config::from_env(env, MissingKey::Generate)?;
        let generated_password = command
            .admin
            .is_none()
            .then(|| uuid::Uuid::new_v4().simple().to_string());
        if let Some(password) = &generated_password {
            command.admin = Some(("admin".to_owned(), password.clone()));
        }
        let previous_keys = command.previous_keys.iter().map(|key| key.pem());
        let public_key: String = std::iter::once(command.signing_key.public_key_pem())
            .chain(previous_keys)
            .collect();
        let key = PublicKey::InProcess(&public_key);
        Ok(Self {
            metrics_addr: command.metrics_addr,
            query: query_api::config::Config::from_env(env, key)?,
            projectors: projectors::config::Config::from_env(env, key)?,
            command,
            generated_password,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use command_api::auth::tokens::Tokens;
    use domain::account::Role;

    use super::*;

    fn from_pairs(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn each_service_takes_its_variables_from_the_environment() {
        let config = from_pairs(&[
            ("EVENT_STORE_URL", "sqlite://elsewhere/events.db"),
            ("VIEWS_DATABASE_URL", "sqlite://elsewhere/views.db?mode=rwc"),
            ("VIEWS_POOL_SIZE", "3"),
            ("COMMAND_API_ADDR", "127.0.0.1:9080"),
            ("QUERY_API_ADDR", "127.0.0.1:9081"),
            ("PROJECTORS_ADMIN_ADDR", "127.0.0.1:9082"),
            ("READ_WAIT_MS", "1234"),
            ("ORDER_WAIT_MS", "4321"),
            ("JWT_TTL_SECONDS", "60"),
            ("RUN_SAGA", "false"),
            ("ADMIN_USERNAME", "root"),
            ("ADMIN_PASSWORD", "secret"),
            ("METRICS_ADDR", "127.0.0.1:9100"),
        ])
        .unwrap();
        let Config {
            command,
            query,
            projectors,
            metrics_addr,
            generated_password,
        } = config;
        assert_eq!(metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(command.store_url, "sqlite://elsewhere/events.db");
        assert_eq!(command.listen, "127.0.0.1:9080".parse().unwrap());
        assert_eq!(command.order_wait, Duration::from_millis(4321));
        assert_eq!(command.token_lifetime, Duration::from_secs(60));
        assert!(!command.run_saga);
        assert_eq!(command.admin, Some(("root".to_owned(), "secret".to_owned())));
        assert_eq!(generated_password, None);
        assert_eq!(query.views_url, "sqlite://elsewhere/views.db?mode=rwc");
        assert_eq!(query.pool.size, 3);
        assert_eq!(query.listen, "127.0.0.1:9081".parse().unwrap());
        assert_eq!(query.read_wait, Duration::from_millis(1234));
        assert_eq!(projectors.storage.store_url, command.store_url);
        assert_eq!(projectors.storage.views_url, query.views_url);
        assert_eq!(projectors.storage.pool.size, 3);
        let admin = projectors.admin.expect("the admin API is on");
        assert_eq!(admin.listen, "127.0.0.1:9082".parse().unwrap());
    }

    #[test]
    fn the_admin_api_can_be_turned_off() {
        let config = from_pairs(&[("PROJECTORS_ADMIN_ADDR", "off")]).unwrap();
        assert!(config.projectors.admin.is_none());
    }

    #[test]
    fn the_read_side_verifies_the_in_process_command_apis_tokens() {
        let config = from_pairs(&[("JWT_ISSUER", "accounts"), ("JWT_PUBLIC_KEY", "ignored here")]).unwrap();
        let command = &config.command;
        let tokens = Tokens::new(
            command.signing_key.clone(),
            command.issuer.clone(),
            command.audience.clone(),
            command.token_lifetime,
        );
        let token = tokens
            .issue(uuid::Uuid::nil(), Role::Admin, 1, chrono::Utc::now())
            .unwrap();
        config.query.verifier.verify(&token).unwrap();
        let admin = config.projectors.admin.unwrap();
        admin.verifier.verify(&token).unwrap();
    }

    #[test]
    fn the_read_side_also_verifies_the_previous_keys_tokens() {
        let previous = command_api::auth::tokens::SigningKey::generate().unwrap();
        let config = from_pairs(&[("JWT_PREVIOUS_PUBLIC_KEYS", &previous.public_key_pem())]).unwrap();
        let old = Tokens::new(previous, "shop".to_owned(), "shop".to_owned(), Duration::from_secs(60));
        let token = old
            .issue(uuid::Uuid::nil(), Role::Admin, 1, chrono::Utc::now())
            .unwrap();
        config.query.verifier.verify(&token).unwrap();
        config.projectors.admin.unwrap().verifier.verify(&token).unwrap();
    }

    #[test]
    fn without_a_configured_administrator_one_is_made_up_for_the_run() {
        let config = from_pairs(&[]).unwrap();
        let password = config.generated_password.expect("a password is made up");
        assert_eq!(config.command.admin, Some(("admin".to_owned(), password)));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, bad) in [
            ("READ_WAIT_MS", "soon"),
            ("QUERY_API_ADDR", "here"),
            ("PROJECTORS_ADMIN_ADDR", "there"),
            ("VIEWS_POOL_SIZE", "0"),
            ("ORDER_WAIT_MS", "later"),
            ("METRICS_ADDR", "anywhere"),
        ] {
            let error = from_pairs(&[(variable, bad)]).err().unwrap();
            assert_eq!(error.variable, variable, "{error}");
        }
    }
}
