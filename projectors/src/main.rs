//! The projectors as their own process.
//!
//! - `projectors` (or `projectors run`): keep every projection up to date,
//!   with the admin API on `PROJECTORS_ADMIN_ADDR` (`off` for none);
//! - `projectors migrate`: bring the views' schema up to date and stop (the
//!   query API refuses to start on an older schema);
//! - `projectors replay <projection>|all`: rebuild beside the live tables
//!   (blue/green, `generations/`) and promote the rebuilt rows, reporting
//!   where they differ from the live ones;
//! - `projectors rebuild <projection>|all`: the same, but promote only when
//!   the rebuilt rows are the live ones (else keep them for `promote`);
//! - `projectors verify <projection>`: compare the next generation (a
//!   scratch rebuild when there is none) with the live one; exits 1 when
//!   they differ;
//! - `projectors promote <projection> [--accept-differences]`, `projectors
//!   rollback <projection>`, `projectors drop <projection> next|previous`;
//! - `projectors status`: each projection's checkpoint against the log's head;
//! - `projectors openapi`: print the admin API's OpenAPI document.
//!
//! Every mode but `openapi` migrates the views first. A views database or
//! event store that does not answer yet is waited for, up to
//! `STARTUP_WAIT_MS`; then the process stops saying why.

use std::process::ExitCode;
use std::sync::Arc;

use api_common::config::Env;
use api_common::redact::url_error;
use api_common::startup_wait::{Failure, until_available};
use api_common::verifier::PublicKey;
use event_store::{EventStore, StoreError};
use projectors::config::{Admin, Config, Storage};
use projectors::generations::rebuild::{Promotion, Rebuilder};
use projectors::generations::{Slot, record, swap, verify};
use projectors::projection::Projection;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: projectors [run | migrate | status | openapi
  | replay <projection>|all | rebuild <projection>|all | verify <projection>
  | promote <projection> [--accept-differences] | rollback <projection>
  | drop <projection> next|previous]   (projections: catalog, users, orders)";

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = api_common::process::init_tracing() {
        tracing::error!("{error}");
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["run"] => run().await,
        ["migrate"] => migrate().await,
        ["replay", name] => rebuild(name, Promotion::AcceptingDifferences).await,
        ["rebuild", name] => rebuild(name, Promotion::WhenClean).await,
        ["verify", name] => verify(name).await,
        ["promote", name] => promote(name, false).await,
        ["promote", name, "--accept-differences"] => promote(name, true).await,
        ["rollback", name] => roll_back(name).await,
        ["drop", name, generation @ ("next" | "previous")] => drop_generation(name, generation).await,
        ["status"] => status().await,
        ["openapi"] => {
            println!("{}", projectors::admin::spec());
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
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

/// The event store `storage` names, once it answers.
async fn store(storage: &Storage) -> Result<Arc<dyn EventStore>, String> {
    let url = &storage.store_url;
    let failure = |e: StoreError| {
        let passing = matches!(e, StoreError::Unavailable { .. });
        Failure::of(passing, url_error(url, e))
    };
    until_available("the event store", storage.startup_wait, || async {
        let store = event_store::connect(url).map_err(failure)?;
        store.head().await.map_err(failure)?;
        Ok(store)
    })
    .await
}

/// The views `storage` names, once they answer, their schema brought up
/// to date.
async fn views(storage: &Storage) -> Result<sea_orm::DatabaseConnection, String> {
    let url = &storage.views_url;
    until_available("the views database", storage.startup_wait, || async {
        projectors::database::connect_and_migrate(url, storage.pool)
            .await
            .map_err(|e| Failure::of(views::is_unavailable(&e), url_error(url, e)))
    })
    .await
}

async fn migrate() -> Result<(), String> {
    views(&storage()?).await?;
    println!("the views schema is up to date");
    Ok(())
}

async fn run() -> Result<(), String> {
    let config = Config::from_env(&Env::from_process(), PublicKey::FromEnv).map_err(|e| e.to_string())?;
    let store = store(&config.storage).await?;
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
                operations: Arc::new(projectors::admin::Operations::new(quarantine, config.rebuild_pace)),
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
        batch_size: batch_size(&Env::from_process())?,
        lease_ttl: config.lease_ttl,
        quarantine,
    };
    tokio::spawn(projectors::generations::metrics::keep_refreshed(
        db.clone(),
        shutdown.clone(),
    ));
    let running = projectors::supervisor::start_in(&instance, store, db, options, shutdown.clone());
    api_common::process::shutdown_signal().await;
    shutdown.cancel();
    running.stopped().await;
    for server in [admin, metrics].into_iter().flatten() {
        server.stopped().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `PROJECTOR_BATCH_SIZE`: the most events applied in one transaction,
/// by the projectors and by rebuilds (default 500).
fn batch_size(env: &Env) -> Result<usize, String> {
    let default = projectors::runner::ProjectorOptions::default().batch_size;
    match env.parse_or("PROJECTOR_BATCH_SIZE", default) {
        Ok(0) => Err("PROJECTOR_BATCH_SIZE is not valid: 0: at least 1".to_owned()),
        Ok(size) => Ok(size),
        Err(error) => Err(error.to_string()),
    }
}

/// The projections `name` names (`all`: every one).
fn projections(name: &str) -> Result<Vec<Arc<dyn Projection>>, String> {
    if name == "all" {
        return Ok(projectors::all());
    }
    let projection = projectors::named(name).ok_or_else(|| format!("no projection called {name:?}"))?;
    Ok(vec![projection])
}

/// A rebuilder of each projection `name` names, on the configured store
/// and views.
async fn rebuilders(name: &str) -> Result<Vec<Rebuilder>, String> {
    let env = Env::from_process();
    let storage = Storage::from_env(&env).map_err(|e| e.to_string())?;
    let attempts = projectors::config::poison_attempts(&env).map_err(|e| e.to_string())?;
    let pace = projectors::config::rebuild_pace(&env).map_err(|e| e.to_string())?;
    let store = store(&storage).await?;
    let db = views(&storage).await?;
    let options = projectors::runner::ProjectorOptions {
        batch_size: batch_size(&env)?,
        quarantine: projectors::quarantine::Quarantine {
            attempts,
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(projections(name)?
        .into_iter()
        .map(|projection| Rebuilder {
            store: Arc::clone(&store),
            db: db.clone(),
            projection,
            options: options.clone(),
            parked_by: format!("rebuild-{}", std::process::id()),
            pace,
        })
        .collect())
}

async fn rebuild(name: &str, promotion: Promotion) -> Result<(), String> {
    let mut not_promoted = Vec::new();
    for rebuilder in rebuilders(name).await? {
        let started = std::time::Instant::now();
        let name = rebuilder.projection.name();
        if rebuilder.begin().await.map_err(|e| e.to_string())? {
            println!("{name}: resuming the rebuild under way");
        }
        let outcome = rebuilder.rebuild(promotion).await.map_err(|e| e.to_string())?;
        print_report(&outcome.report);
        match outcome.promoted {
            Some(reached) => println!(
                "{name}: rebuilt and promoted at position {} in {:.1} s",
                reached.map_or("(empty log)".to_owned(), |p| p.to_string()),
                started.elapsed().as_secs_f64()
            ),
            None => not_promoted.push(name),
        }
    }
    match not_promoted[..] {
        [] => Ok(()),
        _ => Err(format!(
            "{}: the rebuilt generation differs from the live one and was not promoted; \
             `projectors promote <projection> --accept-differences` promotes it, \
             `projectors drop <projection> next` drops it",
            not_promoted.join(", ")
        )),
    }
}

async fn verify(name: &str) -> Result<(), String> {
    let [rebuilder] = <[Rebuilder; 1]>::try_from(rebuilders(name).await?).map_err(|_| USAGE.to_owned())?;
    if !rebuilder.has(Slot::Next).await.map_err(|e| e.to_string())? {
        println!("{name}: no next generation; rebuilding one from the log to compare with");
        rebuilder.begin().await.map_err(|e| e.to_string())?;
    }
    let report = verify::verify(&rebuilder, Slot::Next, Slot::Live)
        .await
        .map_err(|e| e.to_string())?;
    print_report(&report);
    if report.is_clean() {
        Ok(())
    } else {
        Err(format!(
            "{name}: the next generation differs from the live one in {} rows",
            report.differences
        ))
    }
}

/// Prints a verification's report: counts, then the first differences.
fn print_report(report: &verify::Report) {
    let position = report.position.map_or("(empty log)".to_owned(), |p| p.to_string());
    println!(
        "{}: {} generation against {} at position {position}: {} rows differ",
        report.projection,
        report.generation.label(),
        report.compared_with.label(),
        report.differences
    );
    for table in &report.tables {
        println!("  {}: {} rows against {}", table.table, table.rows, table.compared_rows);
    }
    for difference in &report.first {
        println!("  {}", serde_json::to_string(difference).unwrap_or_default());
    }
}

async fn promote(name: &str, accept_differences: bool) -> Result<(), String> {
    let [rebuilder] = <[Rebuilder; 1]>::try_from(rebuilders(name).await?).map_err(|_| USAGE.to_owned())?;
    let position = swap::promote(&rebuilder, accept_differences)
        .await
        .map_err(|e| e.to_string())?;
    println!("{name}: next generation promoted at position {}", shown(position));
    Ok(())
}

async fn roll_back(name: &str) -> Result<(), String> {
    let [rebuilder] = <[Rebuilder; 1]>::try_from(rebuilders(name).await?).map_err(|_| USAGE.to_owned())?;
    let position = swap::roll_back(&rebuilder).await.map_err(|e| e.to_string())?;
    println!("{name}: previous generation live again at position {}", shown(position));
    Ok(())
}

async fn drop_generation(name: &str, generation: &str) -> Result<(), String> {
    let [rebuilder] = <[Rebuilder; 1]>::try_from(rebuilders(name).await?).map_err(|_| USAGE.to_owned())?;
    let slot = if generation == "next" {
        Slot::Next
    } else {
        Slot::Previous
    };
    if swap::remove(&rebuilder, slot).await.map_err(|e| e.to_string())? {
        println!("{name}: {generation} generation dropped");
    } else {
        println!("{name}: there was no {generation} generation");
    }
    Ok(())
}

fn shown(position: Option<event_store::Position>) -> String {
    position.map_or("(empty log)".to_owned(), |p| p.to_string())
}

async fn status() -> Result<(), String> {
    let storage = storage()?;
    let store = store(&storage).await?;
    let db = views(&storage).await?;
    let head = store.head().await.map_err(|e| e.to_string())?;
    let checkpoints = views::checkpoint::all(&db).await.map_err(|e| e.to_string())?;
    let at = |key: &str| {
        checkpoints
            .iter()
            .find(|(name, _)| name == key)
            .map_or_else(|| "not started".to_owned(), |(_, p)| p.to_string())
    };
    println!("log head: {}", head.map_or("empty".to_owned(), |p| p.to_string()));
    for projection in projectors::all() {
        let name = projection.name();
        println!("{name}: {}", at(name));
        for slot in [Slot::Next, Slot::Previous] {
            let Some(generation) = record::of(&db, name, slot).await.map_err(|e| e.to_string())? else {
                continue;
            };
            let verified = match generation.differences {
                None => "not verified".to_owned(),
                Some(differences) => format!(
                    "{differences} rows differ from {}",
                    generation.compared_with.unwrap_or_default()
                ),
            };
            println!(
                "  {} generation (version {}): {}, {} events applied, {verified}",
                slot.label(),
                generation.version,
                at(&slot.name(name)),
                generation.events_done
            );
        }
    }
    Ok(())
}
