//! `cargo run`: Shop in one process on this machine, with no services to
//! install: the command API and the order saga over the embedded event
//! store, the projectors into SQLite views, and the query API, all under
//! `./data` unless configured otherwise (`shop::Config`). Stops cleanly on
//! Ctrl-C or SIGTERM.

mod sample_products;

use std::process::ExitCode;
use std::sync::Arc;

use api_common::config::Env;
use api_common::redact::{redacted, redacted_in, url_error};
use api_common::serve::Server;
use api_common::startup_wait::{Failure, until_available};
use command_api::startup::CommandApi;
use event_store::EventStore;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = api_common::process::init_tracing() {
        tracing::error!("{error}");
        return ExitCode::FAILURE;
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = shop::Config::from_env(&Env::from_process()).map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let shop = start(config, &shutdown).await?;
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    shop.stopped().await
}

/// Everything `cargo run` started.
struct Shop {
    command_api: CommandApi,
    query_api: Server,
    admin_api: Option<Server>,
    /// The metrics on their own address (`METRICS_ADDR`).
    metrics: Option<Server>,
    projections: projectors::supervisor::Running,
}

impl Shop {
    async fn stopped(self) -> Result<(), String> {
        let optional = |server: Option<Server>| async {
            match server {
                Some(server) => server.stopped().await,
                None => Ok(()),
            }
        };
        let (commands, queries, admin, metrics) = tokio::join!(
            self.command_api.stopped(),
            self.query_api.stopped(),
            optional(self.admin_api),
            optional(self.metrics)
        );
        self.projections.stopped().await;
        commands.and(queries).and(admin).and(metrics).map_err(|e| e.to_string())
    }
}

/// Starts each service with its own part of `config`, on one event store
/// (EVENT_STORE_URL, read by both the command API's and the projectors'
/// configurations): opening the embedded store once lets the projectors
/// wake on each commit instead of polling.
async fn start(config: shop::Config, shutdown: &CancellationToken) -> Result<Shop, String> {
    let shop::Config {
        command,
        query,
        projectors,
        metrics_addr,
        generated_password,
    } = config;
    let store_url = command.store_url.clone();
    let store = command_api::startup::store_when_available(&store_url, command.startup_wait).await?;
    let admin_username = command.admin.as_ref().map(|(name, _)| name.clone()).unwrap_or_default();
    let banner = format!(
        "Shop is running: events in {}, views in {}",
        redacted(&store_url),
        redacted(&query.views_url)
    );
    // The projectors own the schema: it is current before anything reads it.
    let storage = &projectors.storage;
    let projector_views = views_when_available(&storage.views_url, storage.startup_wait, || {
        projectors::database::connect_and_migrate(&storage.views_url, storage.pool)
    })
    .await?;
    // Before any service listens, so none of their ports serves /metrics.
    let metrics = api_common::metrics::serve_configured(metrics_addr, shutdown).await?;
    let command_api = start_command_api(Arc::clone(&store), command, shutdown)
        .await
        .map_err(|e| redacted_in(&e, &store_url))?;
    let (admin_api, projections) = start_projectors(Arc::clone(&store), projectors, projector_views, shutdown).await?;
    // Its own pool, so reads never wait for a connection a projector holds.
    let query_views = views_when_available(&query.views_url, query.startup_wait, || {
        views::connect(&query.views_url, query.pool)
    })
    .await?;
    let query_api = query_api::startup::start(query_views, query, shutdown.clone())
        .await
        .map_err(|e| format!("QUERY_API_ADDR: {e}"))?;
    let shop = Shop {
        command_api,
        query_api,
        admin_api,
        metrics,
        projections,
    };
    shop.print(&banner, &admin_username, generated_password.as_deref());
    Ok(shop)
}

/// The views database `connect` connects to at `url`, once it answers
/// (waited for up to `within`, `STARTUP_WAIT_MS`).
async fn views_when_available<Connect>(
    url: &str,
    within: std::time::Duration,
    connect: impl Fn() -> Connect,
) -> Result<views::DatabaseConnection, String>
where
    Connect: Future<Output = Result<views::DatabaseConnection, views::DbErr>>,
{
    until_available("the views database", within, || async {
        connect()
            .await
            .map_err(|e| Failure::of(views::is_unavailable(&e), url_error(url, e)))
    })
    .await
}

/// The projections, each in the instance's claim, and their admin API
/// (unless `PROJECTORS_ADMIN_ADDR=off`), sharing one view of their state.
async fn start_projectors(
    store: Arc<dyn EventStore>,
    projectors: projectors::config::Config,
    projector_views: views::DatabaseConnection,
    shutdown: &CancellationToken,
) -> Result<(Option<Server>, projectors::supervisor::Running), String> {
    let instance = Arc::new(projectors::instance::Instance::new(projectors.lag_limit));
    let quarantine = projectors::quarantine::Quarantine {
        attempts: projectors.poison_attempts,
        ..Default::default()
    };
    let admin_api = match projectors.admin {
        Some(admin) => {
            let state = projectors::admin::Projectors {
                store: Arc::clone(&store),
                db: projector_views.clone(),
                operations: Arc::new(projectors::admin::Operations::new(quarantine, projectors.rebuild_pace)),
                instance: Arc::clone(&instance),
            };
            Some(start_admin_api(state, admin, shutdown).await?)
        }
        None => None,
    };
    let options = projectors::runner::ProjectorOptions {
        lease_ttl: projectors.lease_ttl,
        quarantine,
        ..Default::default()
    };
    let projections = projectors::supervisor::start_in(&instance, store, projector_views, options, shutdown.clone());
    Ok((admin_api, projections))
}

/// The command API (with the saga unless `RUN_SAGA=false`), and the sample
/// products on first start.
async fn start_command_api(
    store: Arc<dyn EventStore>,
    config: command_api::config::Config,
    shutdown: &CancellationToken,
) -> Result<CommandApi, String> {
    let command_api = command_api::startup::start(store, config, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    let added = sample_products::add(&command_api.catalog)
        .await
        .map_err(|e| e.to_string())?;
    if added > 0 {
        tracing::info!(added, "sample products added");
    }
    Ok(command_api)
}

async fn start_admin_api(
    state: projectors::admin::Projectors,
    admin: projectors::config::Admin,
    shutdown: &CancellationToken,
) -> Result<Server, String> {
    projectors::admin::start(state, admin.verifier, admin.listen, admin.http, shutdown.clone())
        .await
        .map_err(|e| format!("PROJECTORS_ADMIN_ADDR {}: {e}", admin.listen))
}

impl Shop {
    /// Where everything is, and how to log in as the administrator.
    fn print(&self, banner: &str, admin_username: &str, generated_password: Option<&str>) {
        let commands = format!("http://{}", self.command_api.address);
        let queries = format!("http://{}", self.query_api.address);
        println!();
        println!("{banner}");
        println!("  command API  {commands}   Swagger UI: {commands}/docs");
        println!("  query API    {queries}   Swagger UI: {queries}/docs");
        match &self.admin_api {
            Some(admin_api) => {
                let admin = format!("http://{}", admin_api.address);
                println!("  projectors   {admin}   Swagger UI: {admin}/docs (status, replay)");
            }
            None => println!("  projectors   running, without their admin API (PROJECTORS_ADMIN_ADDR=off)"),
        }
        if let Some(metrics) = &self.metrics {
            println!("  metrics      http://{}/metrics (METRICS_ADDR)", metrics.address);
        }
        match generated_password {
            Some(password) => println!(
                "  admin login  POST {commands}/auth/login {{\"username\": \"{admin_username}\", \"password\": \"{password}\"}}\n               (made up for this run; set ADMIN_USERNAME and ADMIN_PASSWORD to choose)"
            ),
            None => println!("  admin login  POST {commands}/auth/login as {admin_username:?} with ADMIN_PASSWORD"),
        }
        println!("Ctrl-C stops it.");
        println!();
    }
}
