//! The query API as its own process: `query-api` serves the views;
//! `query-api openapi` prints the OpenAPI document.
//!
//! It never changes the views' schema: on a database the projectors have
//! not migrated to the schema it reads ([`views::require_current`]), or
//! one that does not answer yet, it waits for them up to
//! `STARTUP_WAIT_MS`, then stops saying why.

use std::process::ExitCode;

use api_common::config::Env;
use api_common::redact::url_error;
use api_common::startup_wait::{Failure, until_available};
use api_common::verifier::PublicKey;
use query_api::config::Config;
use tokio_util::sync::CancellationToken;
use views::{DatabaseConnection, SchemaError};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = api_common::process::init_tracing() {
        tracing::error!("{error}");
        return ExitCode::FAILURE;
    }
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
    let db = until_available("the views database and its schema", config.startup_wait, || {
        current_views(&config)
    })
    .await?;
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

/// The views database with the schema this build reads; a failure says
/// whether it may pass: the database not answering yet, or the projectors
/// not having migrated it yet.
async fn current_views(config: &Config) -> Result<DatabaseConnection, Failure> {
    let url = &config.views_url;
    let db = views::connect(url, config.pool)
        .await
        .map_err(|e| Failure::of(views::is_unavailable(&e), url_error(url, e)))?;
    match views::require_current(&db).await {
        Ok(()) => Ok(db),
        Err(SchemaError::Database(e)) => Err(Failure::of(views::is_unavailable(&e), url_error(url, e))),
        Err(behind) => Err(Failure::Passing(url_error(url, behind))),
    }
}

async fn openapi() -> Result<(), String> {
    println!("{}", query_api::spec());
    Ok(())
}
