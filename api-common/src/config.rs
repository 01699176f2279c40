//! Reading configuration: the one environment reader every service's
//! `Config::from_env` uses, and the one error they answer with.
//!
//! Services read an [`Env`] rather than the process environment, so that
//! tests build one from pairs instead of changing the process's variables
//! (which every thread of the test binary shares).

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A variable that cannot be used, and why. Printed as one line that
/// starts with the variable's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} {problem}")]
pub struct ConfigError {
    /// The variable at fault, or the variables (`JWT_PUBLIC_KEY or
    /// JWT_PUBLIC_KEY_FILE`).
    pub variable: &'static str,
    /// What is wrong, worded to follow the name (`must be set`).
    pub problem: String,
}

impl ConfigError {
    /// `variable` holds a value that cannot be used.
    pub fn invalid(variable: &'static str, reason: impl Display) -> Self {
        Self {
            variable,
            problem: format!("is not valid: {reason}"),
        }
    }

    /// `variable` is needed and unset.
    pub fn missing(variable: &'static str) -> Self {
        Self {
            variable,
            problem: "must be set".to_owned(),
        }
    }
}

/// Environment variables: the process's, or pairs given by a test. A
/// variable set to the empty string counts as unset, so `VAR= cargo run`
/// gets the default.
#[derive(Debug, Clone, Default)]
pub struct Env {
    variables: HashMap<String, String>,
}

impl Env {
    /// The process's environment (variables that are not Unicode are left
    /// out, as if unset).
    pub fn from_process() -> Self {
        Self {
            variables: std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
                .collect(),
        }
    }

    /// These variables and no others.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        Self {
            variables: pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }

    /// The value of `name`, unless it is unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `name`, or `default`.
    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// `name` parsed as a `T`; `None` when it is unset.
    pub fn parse<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse_with(name, |value| {
            value
                .map(|raw| raw.parse().map_err(|e| format!("{raw:?}: {e}")))
                .transpose()
        })
    }

    /// `name` parsed as a `T`, or `default` when it is unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(name)?.unwrap_or(default))
    }

    /// `name` as a whole number of milliseconds, or `default`.
    pub fn millis_or(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self.parse(name)?.map_or(default, Duration::from_millis))
    }

    /// `name` as a whole number of milliseconds, at least 1, or `default`.
    pub fn positive_millis_or(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.millis_or(name, default)? {
            Duration::ZERO => Err(ConfigError::invalid(name, "must be at least 1 (milliseconds)")),
            duration => Ok(duration),
        }
    }

    /// `name` as a whole number of seconds, or `default`.
    pub fn seconds_or(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self.parse(name)?.map_or(default, Duration::from_secs))
    }

    /// `name` read by `parse`, which gets the value (`None` when unset)
    /// and answers what is wrong with it; the error names `name`.
    pub fn parse_with<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(Option<&str>) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        parse(self.get(name)).map_err(|reason| ConfigError::invalid(name, reason))
    }

    /// A secret given either as the value of `name` or as the path of a
    /// file in `file_name` (the value wins when both are set); `None` when
    /// neither is set.
    pub fn value_or_file(&self, name: &'static str, file_name: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.get(name), self.get(file_name)) {
            (Some(value), _) => Ok(Some(value.to_owned())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| ConfigError::invalid(file_name, format!("{path}: {e}"))),
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConfigError, Env};

    #[test]
    fn an_empty_variable_is_unset() {
        let env = Env::from_pairs([("SET", "value"), ("EMPTY", "")]);
        assert_eq!(env.get("SET"), Some("value"));
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get("ABSENT"), None);
        assert_eq!(env.get_or("EMPTY", "default"), "default");
        assert_eq!(env.get_or("SET", "default"), "value");
    }

    #[test]
    fn a_parsed_variable_falls_back_to_its_default_only_when_unset() {
        let env = Env::from_pairs([("PORT", "8080"), ("EMPTY", "")]);
        assert_eq!(env.parse_or("PORT", 1_u16), Ok(8080));
        assert_eq!(env.parse_or("EMPTY", 1_u16), Ok(1));
        assert_eq!(env.parse::<u16>("ABSENT"), Ok(None));
    }

    #[test]
    fn durations_are_whole_milliseconds_or_seconds() {
        let env = Env::from_pairs([("WAIT_MS", "250"), ("TTL_SECONDS", "60")]);
        let fallback = Duration::from_secs(7);
        assert_eq!(env.millis_or("WAIT_MS", fallback), Ok(Duration::from_millis(250)));
        assert_eq!(env.seconds_or("TTL_SECONDS", fallback), Ok(Duration::from_secs(60)));
        assert_eq!(env.millis_or("ABSENT", fallback), Ok(fallback));
        assert_eq!(env.seconds_or("ABSENT", fallback), Ok(fallback));
    }

    #[test]
    fn a_value_that_does_not_parse_is_named_with_the_value() {
        let env = Env::from_pairs([("WAIT_MS", "soon"), ("TTL_SECONDS", "-1")]);
        let error = env.millis_or("WAIT_MS", Duration::ZERO).unwrap_err();
        assert_eq!(error.variable, "WAIT_MS");
        assert!(
            error.to_string().starts_with("WAIT_MS is not valid: \"soon\": "),
            "{error}"
        );
        let error = env.seconds_or("TTL_SECONDS", Duration::ZERO).unwrap_err();
        assert_eq!(error.variable, "TTL_SECONDS");
    }

    #[test]
    fn errors_read_as_one_line_starting_with_the_variable() {
        assert_eq!(ConfigError::missing("KEY").to_string(), "KEY must be set");
        assert_eq!(
            ConfigError::invalid("KEY", "too short").to_string(),
            "KEY is not valid: too short"
        );
    }

    #[test]
    fn a_secret_is_the_value_or_the_contents_of_the_named_file() {
        let path = std::env::temp_dir().join(format!("api-common-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "from the file").unwrap();
        let path_text = path.display().to_string();
        let both = Env::from_pairs([
            ("JWT_PUBLIC_KEY", "inline"),
            ("JWT_PUBLIC_KEY_FILE", path_text.as_str()),
        ]);
        let inline = both.value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE");
        let file_only = Env::from_pairs([("JWT_PUBLIC_KEY_FILE", path_text.as_str())]);
        let from_file = file_only.value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(inline, Ok(Some("inline".to_owned())));
        assert_eq!(from_file, Ok(Some("from the file".to_owned())));
        assert_eq!(
            Env::default().value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE"),
            Ok(None)
        );
        let missing = Env::from_pairs([("JWT_PUBLIC_KEY_FILE", "/no/such/file")]);
        let error = missing
            .value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE")
            .unwrap_err();
        assert_eq!(error.variable, "JWT_PUBLIC_KEY_FILE");
        assert!(error.to_string().contains("/no/such/file"), "{error}");
    }

    #[test]
    fn the_process_environment_is_read() {
        // PATH is set for every test run; nothing here changes it.
        assert_eq!(
            Env::from_process().get("PATH").map(str::to_owned),
            std::env::var("PATH").ok().filter(|path| !path.is_empty())
        );
    }
}
