//! `cargo run`: Shop in one process on this machine, with no services to
//! install: the command API and the order saga over the embedded event
//! store under `./data`. Stops cleanly on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use command_api::config::{self, MissingKey};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url = std::env::var("EVENT_STORE_URL").unwrap_or_else(|_| "sqlite://data/events.db".to_owned());
    let mut config = config::from_env(MissingKey::Generate).map_err(|e| e.to_string())?;
    // Locally, an administrator always exists: the configured one, or
    // "admin" with a password made up for this run (there is no default).
    let generated_password = config
        .admin
        .is_none()
        .then(|| uuid::Uuid::new_v4().simple().to_string());
    if let Some(password) = &generated_password {
        config.admin = Some(("admin".to_owned(), password.clone()));
    }
    let admin_username = config
        .admin
        .as_ref()
        .map(|(username, _)| username.clone())
        .unwrap_or_default();
    let store = event_store::connect(&url).map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let command_api = command_api::startup::start(store, config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://{}", command_api.address);
    println!();
    println!("Shop is running on {url}");
    println!("  command API  {base}   (Swagger UI: {base}/docs)");
    match &generated_password {
        Some(password) => println!(
            "  admin login  POST {base}/auth/login {{\"username\": \"{admin_username}\", \"password\": \"{password}\"}}\n               (made up for this run; set ADMIN_USERNAME and ADMIN_PASSWORD to choose)"
        ),
        None => println!("  admin login  POST {base}/auth/login as {admin_username:?} with ADMIN_PASSWORD"),
    }
    println!("Ctrl-C stops it.");
    println!();
    shutdown_signal().await;
    shutdown.cancel();
    command_api.stopped().await.map_err(|e| e.to_string())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
