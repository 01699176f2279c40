//! `cargo run`: Shop on one machine, with no services to install.
//!
//! Today this opens the embedded event store under `./data` and reports
//! what it holds; the HTTP services join here as they are built (see
//! README.md, "Status").

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let url = std::env::var("EVENT_STORE_URL").unwrap_or_else(|_| "sqlite://data/events.db".to_owned());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match event_store::connect(&url) {
            Ok(store) => store,
            Err(error) => {
                tracing::error!(%error, %url, "cannot open the event store");
                return ExitCode::FAILURE;
            }
        };
        match store.head().await {
            Ok(head) => {
                let head = head.map_or_else(|| "empty".to_owned(), |p| format!("head at position {p}"));
                tracing::info!(%url, "event store ready, {head}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, %url, "cannot read the event store");
                ExitCode::FAILURE
            }
        }
    })
}
