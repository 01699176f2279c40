//! Rebuilding a projection as a new generation beside the live one.
//!
//! The next generation's tables are created empty (`tables.rs`) and the log
//! is applied to them from the start in batches, each its own short
//! transaction that moves the generation's own checkpoint
//! (`catalog__next`) exactly as a projector's batch does (`runner.rs`): no
//! transaction lasts longer than one batch whatever the log's size, and a
//! rebuild stopped anywhere (`kill -9` included) resumes from that
//! checkpoint when started again. Events it cannot read are retried and
//! parked as a projector parks them, under the generation's key.
//!
//! [`Rebuilder::rebuild`] runs the whole way: build, catch up with the
//! events written meanwhile, verify against the live generation
//! (`verify.rs`), and promote (`swap.rs`) when the rows agree, or whatever
//! they say when asked to.

use std::sync::Arc;

use event_store::{EventStore, Position, StreamFilter};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use views::checkpoint;

use super::pace::Pace;
use super::verify::{self, Report};
use super::{GenerationError, Slot, record, swap, tables};
use crate::database;
use crate::instance::Instance;
use crate::parked;
use crate::projection::Projection;
use crate::quarantine::Attempts;
use crate::runner::{Follower, ProjectorError, ProjectorOptions, Step};

/// Everything a rebuild of one projection needs.
#[derive(Clone)]
pub struct Rebuilder {
    pub store: Arc<dyn EventStore>,
    pub db: DatabaseConnection,
    pub projection: Arc<dyn Projection>,
    /// Its batch size and quarantine.
    pub options: ProjectorOptions,
    /// Who parks what it cannot read.
    pub parked_by: String,
    /// How much of the time it may spend working (`pace.rs`).
    pub pace: Pace,
}

/// When a rebuild is promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// Only when its rows are the live ones' at the same position.
    WhenClean,
    /// Whatever the verification found (its differences are reported):
    /// a replay, or a new version whose differences the admin expects.
    AcceptingDifferences,
}

/// What a whole rebuild did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The position the promoted generation stood at, when promoted.
    pub promoted: Option<Option<Position>>,
    pub report: Report,
}

impl Rebuilder {
    /// Builds the next generation (or resumes building it), catches it up,
    /// verifies it against the live one and promotes it as `promotion`
    /// says.
    pub async fn rebuild(&self, promotion: Promotion) -> Result<Outcome, GenerationError> {
        self.begin().await?;
        self.catch_up(Slot::Next).await?;
        let report = verify::verify(self, Slot::Next, Slot::Live).await?;
        if !report.is_clean() {
            tracing::warn!(
                projection = self.projection.name(),
                differences = report.differences,
                first = ?report.first.first(),
                "the rebuilt generation differs from the live one"
            );
        }
        let promoted = match promotion {
            Promotion::WhenClean if !report.is_clean() => None,
            _ => Some(swap::promote(self, promotion == Promotion::AcceptingDifferences).await?),
        };
        Ok(Outcome { promoted, report })
    }

    /// Creates the next generation, empty, unless an unfinished rebuild by
    /// this version of the projection has created it (which this one then
    /// resumes: `true`). A next generation that was finished (left by a
    /// verification, or by a rebuild that differed) or built by another
    /// version is dropped first: a rebuild applies the log with the code
    /// now running.
    pub async fn begin(&self) -> Result<bool, GenerationError> {
        let projection = self.projection.as_ref();
        let name = projection.name();
        let key = Slot::Next.name(name);
        let transaction = database::begin_write(&self.db).await?;
        database::lock_projection(&transaction, &key).await?;
        let found = record::of(&transaction, name, Slot::Next).await?;
        let version = i32::try_from(projection.version()).unwrap_or(i32::MAX);
        if found
            .as_ref()
            .is_some_and(|next| next.built_at.is_none() && next.version == version)
        {
            return Ok(true);
        }
        tables::remove(&transaction, projection.tables(), Slot::Next).await?;
        checkpoint::overwrite(&transaction, &key, None).await?;
        parked::remove_all(&transaction, &key).await?;
        record::remove(&transaction, name, Slot::Next).await?;
        tables::create(&transaction, projection.tables(), Slot::Next).await?;
        record::start(&transaction, name, projection.version()).await?;
        transaction.commit().await?;
        tracing::info!(projection = name, version = projection.version(), "rebuild started");
        Ok(false)
    }

    /// Whether the projection has a generation in `slot`.
    pub async fn has(&self, slot: Slot) -> Result<bool, GenerationError> {
        Ok(tables::exist(&self.db, self.projection.tables(), slot).await?)
    }

    /// Applies the log to the generation in `slot` from its checkpoint, in
    /// batches that each commit with the checkpoint, until it has reached
    /// the head (read again each time it gets there, so that it also
    /// catches up with what was written meanwhile); the position reached.
    /// Each batch of a rebuild counts its events in the generation's
    /// record, in its own transaction (`runner.rs`).
    pub async fn catch_up(&self, slot: Slot) -> Result<Option<Position>, ProjectorError> {
        let follower = self.follower(slot);
        let key = follower.key();
        let mut attempts = Attempts::default();
        let mut applied = checkpoint::load(&self.db, &key).await?;
        loop {
            let started = tokio::time::Instant::now();
            let head = self.store.head().await?;
            if applied >= head {
                if slot == Slot::Next {
                    record::built(&self.db, self.projection.name()).await?;
                }
                return Ok(applied);
            }
            let mut batch = self
                .store
                .read_all(applied, self.options.batch_size, &StreamFilter::all())
                .await?;
            batch.retain(|event| applied.is_none_or(|applied| event.position > applied));
            if batch.is_empty() {
                return Ok(applied);
            }
            match follower.step(applied, &batch, &mut attempts).await? {
                Step::Applied(to) => applied = Some(to),
                Step::Moved => applied = checkpoint::load(&self.db, &key).await?,
                Step::Again => {
                    // The retry's own pause is not work: pacing it would
                    // stretch it.
                    tokio::time::sleep(self.options.quarantine.pause).await;
                    continue;
                }
            }
            self.pace.rest(started).await;
        }
    }

    /// A follower of the log writing the generation in `slot`, on its own.
    fn follower(&self, slot: Slot) -> Follower {
        let (progress, receiver) = watch::channel(None);
        let subscriber = Instance::default().register(self.projection.name(), receiver);
        Follower {
            store: Arc::clone(&self.store),
            db: self.db.clone(),
            projection: Arc::clone(&self.projection),
            slot,
            options: self.options.clone(),
            progress,
            subscriber,
            parked_by: self.parked_by.clone(),
        }
    }
}

/// Rebuilds `projection` beside its live tables in batches of
/// `batch_size`, at full pace, and promotes the result whatever it differs
/// in, as `projectors replay` does (which goes at the configured pace);
/// the position promoted.
pub async fn replay(
    store: &Arc<dyn EventStore>,
    db: &DatabaseConnection,
    projection: &Arc<dyn Projection>,
    batch_size: usize,
) -> Result<Option<Position>, GenerationError> {
    let rebuilder = Rebuilder {
        store: Arc::clone(store),
        db: db.clone(),
        projection: Arc::clone(projection),
        options: ProjectorOptions {
            batch_size,
            ..ProjectorOptions::default()
        },
        parked_by: format!("replay-{}", std::process::id()),
        pace: Pace::FULL,
    };
    let outcome = rebuilder.rebuild(Promotion::AcceptingDifferences).await?;
    Ok(outcome.promoted.flatten())
}
