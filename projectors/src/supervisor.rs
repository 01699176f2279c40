//! Running every projection in this process, each while this instance holds
//! its lease (`lease.rs`): with several instances, one runs each projection
//! and another takes over when it stops or dies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{EventStore, Position};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lease;
use crate::projection::Projection;
use crate::runner::{self, ProjectorError, ProjectorOptions};

/// The running projections and how far each has got.
pub struct Running {
    pub progress: BTreeMap<&'static str, watch::Receiver<Option<Position>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits for every projection to stop after shutdown.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts every projection. Outages of the store or the database, and
/// failed writes, restart a projection after a pause; an event it cannot
/// read stops it for good, with the error in the log, rather than skipping
/// the event.
pub fn start(
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    options: ProjectorOptions,
    shutdown: CancellationToken,
) -> Running {
    // The projections count from their first batch, not from the first
    // HTTP request that would install the recorder otherwise.
    api_common::metrics::handle();
    let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let mut progress = BTreeMap::new();
    let mut tasks = Vec::new();
    for projection in crate::all() {
        let (sender, receiver) = watch::channel(None);
        progress.insert(projection.name(), receiver);
        let supervised = Supervised {
            store: Arc::clone(&store),
            db: db.clone(),
            projection,
            options: options.clone(),
            holder: holder.clone(),
            progress: sender,
        };
        tasks.push(tokio::spawn(supervised.run(shutdown.clone())));
    }
    Running { progress, tasks }
}

struct Supervised {
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    projection: Arc<dyn Projection>,
    options: ProjectorOptions,
    holder: String,
    progress: watch::Sender<Option<Position>>,
}

impl Supervised {
    async fn run(self, shutdown: CancellationToken) {
        let name = self.projection.name();
        let pause = self.options.lease_ttl / 3;
        loop {
            match lease::acquire(&self.db, name, &self.holder, self.options.lease_ttl).await {
                Ok(true) => {
                    tracing::info!(projection = name, holder = self.holder, "lease taken");
                    if self.while_holding(&shutdown).await.is_break() {
                        if let Err(error) = lease::release(&self.db, name, &self.holder).await {
                            tracing::warn!(projection = name, %error, "cannot release the lease; it expires");
                        }
                        return;
                    }
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(projection = name, %error, "cannot take the lease"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Runs the projection, restarting it after outages, while the lease
    /// holds. `Break` when this projection is done here (shutdown, or an
    /// event it cannot apply); `Continue` when the lease was lost.
    async fn while_holding(&self, shutdown: &CancellationToken) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        let name = self.projection.name();
        let holding = shutdown.child_token();
        let renewing = tokio::spawn(renew(
            self.db.clone(),
            name,
            self.holder.clone(),
            self.options.lease_ttl,
            holding.clone(),
        ));
        let flow = loop {
            let outcome = runner::run(
                Arc::clone(&self.store),
                self.db.clone(),
                Arc::clone(&self.projection),
                self.options.clone(),
                self.progress.clone(),
                holding.clone(),
            )
            .await;
            match outcome {
                Ok(()) if shutdown.is_cancelled() => break Break(()),
                Ok(()) => break Continue(()),
                Err(error @ ProjectorError::Apply { .. }) => {
                    tracing::error!(projection = name, %error, "projection stopped");
                    break Break(());
                }
                Err(error) => {
                    tracing::warn!(projection = name, %error, "projection failed; restarting");
                    tokio::select! {
                        () = holding.cancelled() => break if shutdown.is_cancelled() { Break(()) } else { Continue(()) },
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        holding.cancel();
        let _ = renewing.await;
        flow
    }
}

/// Renews the lease every third of its time until `holding` is cancelled;
/// cancels `holding` itself when the lease is lost (another instance took
/// it after it expired) or could not be renewed for a whole `ttl`.
async fn renew(
    db: DatabaseConnection,
    projection: &'static str,
    holder: String,
    ttl: Duration,
    holding: CancellationToken,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = holding.cancelled() => return,
            () = tokio::time::sleep(ttl / 3) => {}
        }
        match lease::acquire(&db, projection, &holder, ttl).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::warn!(projection, "lease lost to another instance; stopping here");
                holding.cancel();
                return;
            }
            Err(error) if renewed.elapsed() >= ttl => {
                tracing::warn!(projection, %error, "lease not renewed in time; stopping here");
                holding.cancel();
                return;
            }
            Err(error) => tracing::warn!(projection, %error, "cannot renew the lease yet"),
        }
    }
}
