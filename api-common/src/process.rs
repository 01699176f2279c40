//! What every Shop binary does on start and stop.

use std::str::FromStr;

use crate::config::{ConfigError, Env};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: tracing's default lines, with the spans' fields before
    /// the message.
    Text,
    /// For log platforms: one JSON object per line, with `timestamp`,
    /// `level`, `target`, `fields` (`message` among them), the current
    /// `span` and all the `spans` it is in, with their fields.
    Json,
}

impl FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("use text or json"),
        }
    }
}

/// Logs to stderr (stdout stays free for output such as the OpenAPI
/// document), filtered by `RUST_LOG`, `info` by default, in the format
/// `LOG_FORMAT` names (text by default). A `LOG_FORMAT` it cannot use is
/// the error, with logging set up as text so that it can be logged.
pub fn init_tracing() -> Result<(), ConfigError> {
    let format = Env::from_process().parse_or("LOG_FORMAT", LogFormat::Text);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match format {
        Ok(LogFormat::Json) => logs.json().with_current_span(true).with_span_list(true).init(),
        Ok(LogFormat::Text) | Err(_) => logs.init(),
    }
    format.map(|_| ())
}

/// Returns on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_are_text_or_json_in_any_case() {
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert_eq!("JSON".parse(), Ok(LogFormat::Json));
        assert_eq!("yaml".parse::<LogFormat>(), Err("use text or json"));
    }

    #[test]
    fn an_unusable_log_format_is_named() {
        let env = Env::from_pairs([("LOG_FORMAT", "yaml")]);
        let error = env.parse_or("LOG_FORMAT", LogFormat::Text).unwrap_err();
        assert_eq!(error.to_string(), "LOG_FORMAT is not valid: \"yaml\": use text or json");
        assert_eq!(
            Env::default().parse_or("LOG_FORMAT", LogFormat::Text),
            Ok(LogFormat::Text)
        );
    }
}
