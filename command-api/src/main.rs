//! The command API as its own process.
//!
//! - `command-api` or `command-api serve`: the HTTP API, with the order
//!   saga unless `RUN_SAGA=false`;
//! - `command-api saga`: only the order saga;
//! - `command-api openapi`: print the OpenAPI document.
//!
//! An event store that does not answer yet is waited for, up to
//! `STARTUP_WAIT_MS`; then the process stops saying why.

use std::process::ExitCode;
use std::sync::Arc;

use api_common::config::Env;
use api_common::redact::redacted_in;
use command_api::config::{Config, MissingKey};
use command_api::saga::{self, OrderSaga};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = api_common::process::init_tracing() {
        tracing::error!("{error}");
        return ExitCode::FAILURE;
    }
    let mode = std::env::args().nth(1).unwrap_or_else(|| "serve".to_owned());
    let result = match mode.as_str() {
        "serve" => serve().await,
        "saga" => run_saga().await,
        "openapi" => print_openapi(),
        other => Err(format!("unknown mode {other:?}: use serve, saga or openapi")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let config = Config::from_env(&Env::from_process(), MissingKey::Refuse).map_err(|e| e.to_string())?;
    let url = config.store_url.clone();
    let store = command_api::startup::store_when_available(&url, config.startup_wait).await?;
    let shutdown = CancellationToken::new();
    let metrics = api_common::metrics::serve_configured(config.metrics_addr, &shutdown).await?;
    let api = command_api::startup::start(store, config, shutdown.clone())
        .await
        .map_err(|e| redacted_in(&e.to_string(), &url))?;
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    if let Some(metrics) = metrics {
        metrics.stopped().await.map_err(|e| e.to_string())?;
    }
    api.stopped().await.map_err(|e| e.to_string())
}

async fn run_saga() -> Result<(), String> {
    // The saga signs no tokens: any key will do.
    let config = Config::from_env(&Env::from_process(), MissingKey::Generate).map_err(|e| e.to_string())?;
    let store = command_api::startup::store_when_available(&config.store_url, config.startup_wait).await?;
    let products = Arc::new(command_api::aggregates::Aggregates::new(Arc::clone(&store)));
    let orders = Arc::new(command_api::aggregates::Aggregates::new(Arc::clone(&store)));
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(saga::supervise(
        OrderSaga::new(store, products, orders, config.saga),
        shutdown.clone(),
    ));
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    runner.await.map_err(|e| e.to_string())
}

fn print_openapi() -> Result<(), String> {
    println!("{}", command_api::http::spec());
    Ok(())
}
