//! Running every projection in this process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, Position};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// Starts every projection. Outages of the store or the database restart a
/// projection after a pause; an event it cannot apply stops it for good,
/// with the error in the log, rather than skipping the event.
pub fn start(
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    options: ProjectorOptions,
    shutdown: CancellationToken,
) -> Running {
    let mut progress = BTreeMap::new();
    let mut tasks = Vec::new();
    for projection in crate::all() {
        let (sender, receiver) = watch::channel(None);
        progress.insert(projection.name(), receiver);
        let (store, db, options, shutdown) = (Arc::clone(&store), db.clone(), options.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let outcome = runner::run(
                    Arc::clone(&store),
                    db.clone(),
                    Arc::clone(&projection),
                    options.clone(),
                    sender.clone(),
                    shutdown.clone(),
                )
                .await;
                match outcome {
                    Ok(()) => return,
                    Err(error @ ProjectorError::Apply { .. }) => {
                        tracing::error!(projection = projection.name(), %error, "projection stopped");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(projection = projection.name(), %error, "projection failed; restarting");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }));
    }
    Running { progress, tasks }
}
