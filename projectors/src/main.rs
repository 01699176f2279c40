//! The projectors as their own process.
//!
//! - `projectors` (or `projectors run`): keep every projection up to date,
//!   with the admin API on `PROJECTORS_ADMIN_ADDR` (`off` for none);
//! - `projectors migrate`: bring the views' schema up to date and stop (the
//!   query API refuses to start on an older schema);
//! - `projectors replay <projection>|all`: rebuild from the start of the log
//!   while the old rows keep serving reads;
//! - `projectors status`: each projection's checkpoint against the log's head;
//! - `projectors openapi`: print the admin API's OpenAPI document.
//!
//! Every mode but `openapi` migrates the views first.

use std::process::ExitCode;
use std::sync::Arc;

use api_common::config::Env;
use api_common::redact::{redacted_in, url_error};
use api_common::verifier::PublicKey;
use event_store::EventStore;
use projectors::config::{Admin, Config, Storage};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    api_common::process::init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["run"] => run().await,
        ["migrate"] => migrate().await,
        ["replay", name] => replay(name).await,
        ["status"] => status().await,
        ["openapi"] => {
            println!("{}", projectors::admin::spec());
            Ok(())
        }
        _ => Err("usage: projectors [run | migrate | replay <catalog|users|orders|all> | status | openapi]".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Where the log and the views are, for the modes without an admin API.
fn storage() -> Result<Storage, String> {
    Storage::from_env(&Env::from_process()).map_err(|e| e.to_string())
}

/// The event store `storage` names.
fn store(storage: &Storage) -> Result<Arc<dyn EventStore>, String> {
    let url = &storage.store_url;
    event_store::connect(url).map_err(|e| redacted_in(&e.to_string(), url))
}

/// The views `storage` names, their schema brought up to date.
async fn views(storage: &Storage) -> Result<sea_orm::DatabaseConnection, String> {
    let url = &storage.views_url;
    projectors::database::connect_and_migrate(url, storage.pool_size)
        .await
        .map_err(|e| url_error(url, e))
}

async fn migrate() -> Result<(), String> {
    views(&storage()?).await?;
    println!("the views schema is up to date");
    Ok(())
}

async fn run() -> Result<(), String> {
    let config = Config::from_env(&Env::from_process(), PublicKey::FromEnv).map_err(|e| e.to_string())?;
    let store = store(&config.storage)?;
    let db = views(&config.storage).await?;
    let shutdown = CancellationToken::new();
    let metrics = api_common::metrics::serve_configured(config.metrics_addr, &shutdown).await?;
    let instance = Arc::new(projectors::instance::Instance::new(config.lag_limit));
    let quarantine = projectors::quarantine::Quarantine {
        attempts: config.poison_attempts,
        ..Default::default()
    };
    let admin = match config.admin {
        Some(Admin { listen, verifier, http }) => {
            let projectors = projectors::admin::Projectors {
                store: Arc::clone(&store),
                db: db.clone(),
                replays: Arc::new(projectors::admin::Replays::new(quarantine)),
                instance: Arc::clone(&instance),
            };
            let admin = projectors::admin::start(projectors, verifier, listen, http, shutdown.clone())
                .await
                .map_err(|e| format!("PROJECTORS_ADMIN_ADDR {listen}: {e}"))?;
            Some(admin)
        }
        None => None,
    };
    let options = projectors::runner::ProjectorOptions {
        lease_ttl: config.lease_ttl,
        quarantine,
        ..Default::default()
    };
    let running = projectors::supervisor::start_in(&instance, store, db, options, shutdown.clone());
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    running.stopped().await;
    for server in [admin, metrics].into_iter().flatten() {
        server.stopped().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn replay(name: &str) -> Result<(), String> {
    let env = Env::from_process();
    let storage = Storage::from_env(&env).map_err(|e| e.to_string())?;
    let attempts = projectors::config::poison_attempts(&env).map_err(|e| e.to_string())?;
    let store = store(&storage)?;
    let db = views(&storage).await?;
    let options = projectors::replay::Rebuild {
        batch_size: projectors::runner::ProjectorOptions::default().batch_size,
        quarantine: projectors::quarantine::Quarantine {
            attempts,
            ..Default::default()
        },
        parked_by: format!("replay-{}", std::process::id()),
    };
    let projections = if name == "all" {
        projectors::all()
    } else {
        vec![projectors::named(name).ok_or_else(|| format!("no projection called {name:?}"))?]
    };
    for projection in projections {
        let started = std::time::Instant::now();
        let reached = projectors::replay::rebuild_with(store.as_ref(), &db, projection.as_ref(), &options)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "{}: rebuilt up to position {} in {:.1} s",
            projection.name(),
            reached.map_or("(empty log)".to_owned(), |p| p.to_string()),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn status() -> Result<(), String> {
    let storage = storage()?;
    let store = store(&storage)?;
    let db = views(&storage).await?;
    let head = store.head().await.map_err(|e| e.to_string())?;
    let checkpoints = views::checkpoint::all(&db).await.map_err(|e| e.to_string())?;
    println!("log head: {}", head.map_or("empty".to_owned(), |p| p.to_string()));
    for projection in projectors::all() {
        let at = checkpoints
            .iter()
            .find(|(name, _)| name == projection.name())
            .map(|(_, p)| p.to_string());
        println!(
            "{}: {}",
            projection.name(),
            at.unwrap_or_else(|| "not started".to_owned())
        );
    }
    Ok(())
}
