//! `cargo run`: Shop in one process on this machine, with no services to
//! install: the command API and the order saga over the embedded event
//! store, the projectors into SQLite views, and the query API, all under
//! `./data`. Stops cleanly on Ctrl-C or SIGTERM.

mod sample_products;

use std::process::ExitCode;
use std::sync::Arc;

use api_common::process::env;
use api_common::verifier::Verifier;
use command_api::config::{self, MissingKey};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    api_common::process::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let store_url = env("EVENT_STORE_URL", "sqlite://data/events.db");
    let views_url = env("VIEWS_DATABASE_URL", "sqlite://data/views.db?mode=rwc");
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
    let (issuer, audience) = (config.issuer.clone(), config.audience.clone());
    let store = event_store::connect(&store_url).map_err(|e| e.to_string())?;
    // One pool for the projectors and one for the query API, so reads never
    // wait for a connection a projector's batch holds.
    let pool_size = views::pool_size_from_env()?;
    let connect_views = || async {
        views::connect(&views_url, pool_size)
            .await
            .map_err(|e| format!("{views_url}: {e}"))
    };
    let (projector_views, query_views) = (connect_views().await?, connect_views().await?);
    // The projectors own the schema; it is current before anything reads it.
    views::migrate(&projector_views)
        .await
        .map_err(|e| format!("{views_url}: {e}"))?;
    let shutdown = CancellationToken::new();

    let command_api = command_api::startup::start(Arc::clone(&store), config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    let added = sample_products::add(&command_api.catalog)
        .await
        .map_err(|e| e.to_string())?;
    if added > 0 {
        tracing::info!(added, "sample products added");
    }
    let admin_listen = env("PROJECTORS_ADMIN_ADDR", "127.0.0.1:8082")
        .parse()
        .map_err(|e| format!("PROJECTORS_ADMIN_ADDR: {e}"))?;
    let admin_verifier =
        Verifier::from_pem(&command_api.public_key_pem, issuer.clone(), audience.clone()).map_err(|e| e.to_string())?;
    let admin = projectors::admin::Projectors {
        store: Arc::clone(&store),
        db: projector_views.clone(),
        replays: Default::default(),
    };
    let admin_api = projectors::admin::start(admin, admin_verifier, admin_listen, shutdown.clone())
        .await
        .map_err(|e| format!("PROJECTORS_ADMIN_ADDR {admin_listen}: {e}"))?;
    let projections = projectors::supervisor::start(store, projector_views, Default::default(), shutdown.clone());
    let query_config = query_api::config::Config {
        listen: env("QUERY_API_ADDR", "127.0.0.1:8081")
            .parse()
            .map_err(|e| format!("QUERY_API_ADDR: {e}"))?,
        verifier: Verifier::from_pem(&command_api.public_key_pem, issuer, audience).map_err(|e| e.to_string())?,
        read_wait: std::time::Duration::from_secs(2),
    };
    let query_api = query_api::startup::start(query_views, query_config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;

    let (commands, queries, admin) = (
        format!("http://{}", command_api.address),
        format!("http://{}", query_api.address),
        format!("http://{}", admin_api.address),
    );
    println!();
    println!("Shop is running: events in {store_url}, views in {views_url}");
    println!("  command API  {commands}   Swagger UI: {commands}/docs");
    println!("  query API    {queries}   Swagger UI: {queries}/docs");
    println!("  projectors   {admin}   Swagger UI: {admin}/docs (status, replay)");
    match &generated_password {
        Some(password) => println!(
            "  admin login  POST {commands}/auth/login {{\"username\": \"{admin_username}\", \"password\": \"{password}\"}}\n               (made up for this run; set ADMIN_USERNAME and ADMIN_PASSWORD to choose)"
        ),
        None => println!("  admin login  POST {commands}/auth/login as {admin_username:?} with ADMIN_PASSWORD"),
    }
    println!("Ctrl-C stops it.");
    println!();
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    let (commands, queries, admin) = tokio::join!(command_api.stopped(), query_api.stopped(), admin_api.stopped());
    projections.stopped().await;
    commands.and(queries).and(admin).map_err(|e| e.to_string())
}
