//! How long and how many: the limits every Shop HTTP server puts on its
//! connections, read once from the same variables for all three services
//! (README.md, "Modes and configuration"). Every default is declared here.
//!
//! Without them a client that opens a socket and sends half a request line
//! holds a connection, its buffers and a descriptor for ever; thousands of
//! them exhaust memory or descriptors.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// How long a client has to send a request's headers, from the moment the
/// server waits for them (`HTTP_HEADER_TIMEOUT_MS`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may go without a request starting, a handler
/// running or a response body moving (`HTTP_IDLE_TIMEOUT_MS`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, from its headers to its answer
/// (`HTTP_REQUEST_TIMEOUT_MS`). It must exceed the longest wait an
/// operation makes on purpose: `POST /orders` waits up to `ORDER_WAIT_MS`
/// (5 s) for the saga, a read up to `READ_WAIT_MS` (2 s) for the views.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Open connections one listener serves at once (`HTTP_MAX_CONNECTIONS`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
/// Concurrent streams one HTTP/2 connection may open (`HTTP2_MAX_STREAMS`).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 100;

/// The limits of one HTTP server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: u32,
    pub http2_max_streams: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
        }
    }
}

impl HttpLimits {
    /// Reads `env`; the error names the variable at fault. Zero is refused
    /// everywhere: it would close every connection or serve none.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            header_timeout: positive(env, "HTTP_HEADER_TIMEOUT_MS", defaults.header_timeout)?,
            idle_timeout: positive(env, "HTTP_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
            request_timeout: positive(env, "HTTP_REQUEST_TIMEOUT_MS", defaults.request_timeout)?,
            max_connections: at_least_one(env, "HTTP_MAX_CONNECTIONS", defaults.max_connections)?,
            http2_max_streams: at_least_one(env, "HTTP2_MAX_STREAMS", defaults.http2_max_streams)?,
        })
    }
}

fn positive(env: &Env, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    env.positive_millis_or(name, default)
}

fn at_least_one(env: &Env, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match env.parse_or(name, default)? {
        0 => Err(ConfigError::invalid(name, "must be at least 1")),
        count => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_take_the_defaults() {
        let limits = HttpLimits::from_env(&Env::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limits, HttpLimits::default());
        assert!(
            limits.request_timeout > Duration::from_secs(5),
            "beyond ORDER_WAIT_MS's default"
        );
        assert!(limits.header_timeout <= Duration::from_secs(10));
        assert!(limits.idle_timeout <= Duration::from_secs(10));
    }

    #[test]
    fn every_variable_is_honoured() {
        let env = Env::from_pairs([
            ("HTTP_HEADER_TIMEOUT_MS", "100"),
            ("HTTP_IDLE_TIMEOUT_MS", "200"),
            ("HTTP_REQUEST_TIMEOUT_MS", "300"),
            ("HTTP_MAX_CONNECTIONS", "4"),
            ("HTTP2_MAX_STREAMS", "5"),
        ]);
        let limits = HttpLimits::from_env(&env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            limits,
            HttpLimits {
                header_timeout: Duration::from_millis(100),
                idle_timeout: Duration::from_millis(200),
                request_timeout: Duration::from_millis(300),
                max_connections: 4,
                http2_max_streams: 5,
            }
        );
    }

    #[test]
    fn zero_and_garbage_are_named() {
        for (name, value) in [
            ("HTTP_HEADER_TIMEOUT_MS", "0"),
            ("HTTP_IDLE_TIMEOUT_MS", "soon"),
            ("HTTP_REQUEST_TIMEOUT_MS", "0"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP2_MAX_STREAMS", "-1"),
        ] {
            let error = HttpLimits::from_env(&Env::from_pairs([(name, value)])).err();
            assert_eq!(error.map(|e| e.variable), Some(name), "{name}={value}");
        }
    }
}
