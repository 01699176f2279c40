//! The query API as its own process: `query-api` serves the views;
//! `query-api openapi` prints the OpenAPI document.
//!
//! It never changes the views' schema: it refuses to start on a database
//! the projectors have not migrated to the schema it reads
//! ([`views::require_current`]).

use std::process::ExitCode;

use api_common::config::Env;
use api_common::redact::url_error;
use api_common::verifier::PublicKey;
use query_api::config::Config;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    api_common::process::init_tracing();
    let outcome = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve().await,
        Some("openapi") => openapi().await,
        Some(other) => Err(format!("unknown mode {other:?}: use serve or openapi")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let config = Config::from_env(&Env::from_process(), PublicKey::FromEnv).map_err(|e| e.to_string())?;
    let url = &config.views_url;
    let db = views::connect(url, config.pool_size)
        .await
        .map_err(|e| url_error(url, e))?;
    views::require_current(&db).await.map_err(|e| url_error(url, e))?;
    let shutdown = CancellationToken::new();
    let metrics = api_common::metrics::serve_configured(config.metrics_addr, &shutdown).await?;
    let api = query_api::startup::start(db, config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    if let Some(metrics) = metrics {
        metrics.stopped().await.map_err(|e| e.to_string())?;
    }
    api.stopped().await.map_err(|e| e.to_string())
}

async fn openapi() -> Result<(), String> {
    println!("{}", query_api::spec());
    Ok(())
}
