//! The replays this process started, and how each went.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use event_store::{EventStore, Position};
use sea_orm::DatabaseConnection;

use crate::generations::rebuild::{Promotion, Rebuilder};
use crate::projection::Projection;
use crate::quarantine::Quarantine;
use crate::runner::ProjectorOptions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayState {
    Running {
        since: chrono::DateTime<chrono::Utc>,
    },
    Done {
        reached: Option<Position>,
        at: chrono::DateTime<chrono::Utc>,
    },
    Failed {
        error: String,
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// The last replay of each projection, by name, and how poison events are
/// handled in replays.
#[derive(Default)]
pub struct Replays {
    states: Mutex<BTreeMap<&'static str, ReplayState>>,
    quarantine: Quarantine,
}

#[derive(Debug, thiserror::Error)]
#[error("a replay of {0} is running already")]
pub struct AlreadyRunning(pub &'static str);

impl Replays {
    /// No replay yet; replays handle poison events as `quarantine` says.
    pub fn new(quarantine: Quarantine) -> Self {
        Self {
            states: Mutex::default(),
            quarantine,
        }
    }

    pub fn state(&self, projection: &str) -> Option<ReplayState> {
        self.lock().get(projection).cloned()
    }

    /// Starts rebuilding `projection` in the background, unless a replay of
    /// it is running already; what it parks is parked by `instance`.
    pub fn start(
        self: &Arc<Self>,
        store: Arc<dyn EventStore>,
        db: DatabaseConnection,
        projection: Arc<dyn Projection>,
        instance: &str,
    ) -> Result<ReplayState, AlreadyRunning> {
        let name = projection.name();
        let running = ReplayState::Running {
            since: chrono::Utc::now(),
        };
        {
            let mut replays = self.lock();
            if matches!(replays.get(name), Some(ReplayState::Running { .. })) {
                return Err(AlreadyRunning(name));
            }
            replays.insert(name, running.clone());
        }
        let replays = Arc::clone(self);
        let rebuilder = Rebuilder {
            store,
            db,
            projection,
            options: ProjectorOptions {
                quarantine: self.quarantine,
                ..ProjectorOptions::default()
            },
            parked_by: instance.to_owned(),
        };
        tokio::spawn(async move {
            tracing::info!(projection = name, "replay started");
            let outcome = rebuilder.rebuild(Promotion::AcceptingDifferences).await;
            let at = chrono::Utc::now();
            let state = match outcome {
                Ok(outcome) => {
                    let reached = outcome.promoted.flatten();
                    tracing::info!(projection = name, reached = ?reached.map(|p| p.to_string()), "replay done");
                    ReplayState::Done { reached, at }
                }
                Err(error) => {
                    tracing::error!(projection = name, %error, "replay failed");
                    ReplayState::Failed {
                        error: error.to_string(),
                        at,
                    }
                }
            };
            replays.lock().insert(name, state);
        });
        Ok(running)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, ReplayState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
