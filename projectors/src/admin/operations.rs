//! The operations on a projection's generations this process runs: one at
//! a time per projection (a second is refused while one runs), the
//! background ones (replay, rebuild, verify) remembered with how they
//! ended.
//!
//! What a generation is and how far its rebuild has gone lives in the
//! views (`projection_generations`), where every instance reads it; this
//! registry only keeps this process from running two operations on one
//! projection at once, and says how its own background operations ended.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_store::{EventStore, Position};
use sea_orm::DatabaseConnection;

use crate::generations::GenerationError;
use crate::generations::pace::Pace;
use crate::generations::rebuild::Rebuilder;
use crate::projection::Projection;
use crate::quarantine::Quarantine;
use crate::runner::ProjectorOptions;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Background(Background),
    Promote,
    RollBack,
    Drop,
}

/// What an operation that runs in the background does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    Replay,
    Rebuild,
    Verify,
}

impl Kind {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Background(Background::Replay) => "replay",
            Self::Background(Background::Rebuild) => "rebuild",
            Self::Background(Background::Verify) => "verification",
            Self::Promote => "promotion",
            Self::RollBack => "rollback",
            Self::Drop => "drop",
        }
    }
}

/// How a background operation that ended well ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its generation was promoted at that position.
    Promoted(Option<Position>),
    /// Verified: the next generation differs from the live one in that
    /// many rows (it stays as the next generation).
    Compared { differences: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running {
        since: chrono::DateTime<chrono::Utc>,
    },
    Done {
        ended: Ended,
        at: chrono::DateTime<chrono::Utc>,
    },
    Failed {
        error: String,
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// A background operation and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub kind: Background,
    pub state: State,
}

/// What this process knows of one projection's operations.
#[derive(Default)]
struct Known {
    running: Option<Kind>,
    last: Option<Operation>,
    last_replay: Option<State>,
}

/// The operations of each projection, by name, how poison events are
/// handled in rebuilds and how much of the time rebuilds may work.
#[derive(Default)]
pub struct Operations {
    projections: Mutex<BTreeMap<&'static str, Known>>,
    quarantine: Quarantine,
    pace: Pace,
}

#[derive(Debug, thiserror::Error)]
#[error("a {} of {projection} is running already", running.label())]
pub struct Busy {
    pub projection: &'static str,
    pub running: Kind,
}

/// The right to run one operation on a projection, until dropped.
pub struct Claim {
    operations: Arc<Operations>,
    projection: &'static str,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(known) = self.operations.lock().get_mut(self.projection) {
            known.running = None;
        }
    }
}

impl Operations {
    /// None yet; rebuilds handle poison events as `quarantine` says and
    /// work at `pace`.
    pub fn new(quarantine: Quarantine, pace: Pace) -> Self {
        Self {
            projections: Mutex::default(),
            quarantine,
            pace,
        }
    }

    /// The last background operation on `projection` this process started.
    pub fn last(&self, projection: &str) -> Option<Operation> {
        self.lock().get(projection).and_then(|known| known.last.clone())
    }

    /// The last replay of `projection` this process started.
    pub fn last_replay(&self, projection: &str) -> Option<State> {
        self.lock().get(projection).and_then(|known| known.last_replay.clone())
    }

    /// Claims `projection` for an operation of `kind`, unless one runs.
    pub fn claim(self: &Arc<Self>, projection: &'static str, kind: Kind) -> Result<Claim, Busy> {
        let mut projections = self.lock();
        let known = projections.entry(projection).or_default();
        if let Some(running) = known.running {
            return Err(Busy { projection, running });
        }
        known.running = Some(kind);
        Ok(Claim {
            operations: Arc::clone(self),
            projection,
        })
    }

    /// A rebuilder of `projection`, parking what it cannot read as
    /// `instance`.
    pub fn rebuilder(
        &self,
        store: Arc<dyn EventStore>,
        db: DatabaseConnection,
        projection: Arc<dyn Projection>,
        instance: &str,
    ) -> Rebuilder {
        Rebuilder {
            store,
            db,
            projection,
            options: ProjectorOptions {
                quarantine: self.quarantine,
                ..ProjectorOptions::default()
            },
            parked_by: instance.to_owned(),
            pace: self.pace,
        }
    }

    /// Claims `projection` for `kind` and runs `work` in the background,
    /// remembering how it ends; the operation as it starts.
    pub fn spawn(
        self: &Arc<Self>,
        projection: &'static str,
        kind: Background,
        work: impl Future<Output = Result<Ended, GenerationError>> + Send + 'static,
    ) -> Result<Operation, Busy> {
        let claim = self.claim(projection, Kind::Background(kind))?;
        let started = Operation {
            kind,
            state: State::Running {
                since: chrono::Utc::now(),
            },
        };
        self.remember(projection, started.clone());
        let operations = Arc::clone(self);
        tokio::spawn(async move {
            let (name, label) = (projection, Kind::Background(kind).label());
            tracing::info!(projection = name, operation = label, "started");
            let outcome = work.await;
            let at = chrono::Utc::now();
            let state = match outcome {
                Ok(ended) => {
                    tracing::info!(projection = name, operation = label, ?ended, "done");
                    State::Done { ended, at }
                }
                Err(error) => {
                    tracing::error!(projection = name, operation = label, %error, "failed");
                    State::Failed {
                        error: error.to_string(),
                        at,
                    }
                }
            };
            operations.remember(name, Operation { kind, state });
            drop(claim);
        });
        Ok(started)
    }

    fn remember(&self, projection: &'static str, operation: Operation) {
        let mut projections = self.lock();
        let known = projections.entry(projection).or_default();
        if operation.kind == Background::Replay {
            known.last_replay = Some(operation.state.clone());
        }
        known.last = Some(operation);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Known>> {
        self.projections.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
