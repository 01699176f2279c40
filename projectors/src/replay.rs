//! Rebuilding a projection from the start of the log while its old rows
//! keep serving reads.
//!
//! The rebuild is one transaction: it locks the projection
//! ([`database::lock_projection`]), empties the projection's tables, applies the log in batches up to the
//! head it found at the start, and moves the checkpoint there. Readers see
//! the old rows until the commit and the rebuilt ones from then on, never
//! anything in between. The projector that keeps this projection up to
//! date waits on that lock meanwhile (so reads that ask for a newer
//! position wait, or get 503), then finds its checkpoint moved and carries
//! on from the rebuilt one. On SQLite the transaction holds the database's
//! write lock, so every projection waits; readers do not.
//!
//! An event the projection cannot read is handled as the runner handles it
//! (`quarantine.rs`): tried again, then parked, and the rebuild goes on.
//! The events parked before are judged again: one this build now reads is
//! applied and its record goes; one it still cannot read is parked again
//! at once, its record kept as it was.
//!
//! The rows are emptied with `DELETE`, not `TRUNCATE`, which would lock
//! readers out on Postgres.

use std::collections::BTreeMap;

use event_store::{EventStore, Position, RecordedEvent, StreamFilter};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};
use views::checkpoint;

use crate::database;
use crate::parked::{self, Parked};
use crate::projection::Projection;
use crate::quarantine::{self, Attempts, Poison, Quarantine};
use crate::runner::{self, ProjectorError};

/// How a rebuild goes.
#[derive(Debug, Clone)]
pub struct Rebuild {
    /// The most events read and applied at once.
    pub batch_size: usize,
    pub quarantine: Quarantine,
    /// Who parks what it cannot read (the instance's id).
    pub parked_by: String,
}

/// Rebuilds `projection` from the log in batches of `batch_size`, with the
/// default quarantine; returns the position it reached (`None` for an
/// empty log).
pub async fn rebuild(
    store: &dyn EventStore,
    db: &DatabaseConnection,
    projection: &dyn Projection,
    batch_size: usize,
) -> Result<Option<Position>, ProjectorError> {
    let options = Rebuild {
        batch_size,
        quarantine: Quarantine::default(),
        parked_by: format!("replay-{}", std::process::id()),
    };
    rebuild_with(store, db, projection, &options).await
}

/// Rebuilds `projection` from the log as `options` say; returns the
/// position it reached (`None` for an empty log).
pub async fn rebuild_with(
    store: &dyn EventStore,
    db: &DatabaseConnection,
    projection: &dyn Projection,
    options: &Rebuild,
) -> Result<Option<Position>, ProjectorError> {
    let name = projection.name();
    let transaction = database::begin_write(db).await?;
    database::lock_projection(&transaction, name).await?;
    // The head after the lock: the projector cannot have gone past it, so
    // the checkpoint this rebuild leaves is never behind the one it found.
    let head = store.head().await?;
    for table in projection.tables() {
        transaction.execute_unprepared(&format!("DELETE FROM {table}")).await?;
    }
    let judged: BTreeMap<Position, Parked> = parked::of(&transaction, name)
        .await?
        .into_iter()
        .map(|row| (parked::position(&row), row))
        .collect();
    parked::remove_all(&transaction, name).await?;
    let replay = Replay {
        transaction: &transaction,
        projection,
        options,
        judged,
    };
    let mut applied = None;
    let mut newly_parked = 0;
    while applied < head {
        let batch = store
            .read_all(applied, options.batch_size, &StreamFilter::all())
            .await?;
        let batch: Vec<_> = batch
            .into_iter()
            .take_while(|event| Some(event.position) <= head)
            .collect();
        let Some(last) = batch.last().map(|event| event.position) else {
            break;
        };
        newly_parked += replay.apply(&batch).await?;
        applied = Some(last);
    }
    checkpoint::overwrite(&transaction, name, applied).await?;
    transaction.commit().await?;
    parked::count_parked(name, newly_parked);
    parked::refresh_gauge(db, name).await?;
    Ok(applied)
}

/// A rebuild under way.
struct Replay<'a> {
    transaction: &'a DatabaseTransaction,
    projection: &'a dyn Projection,
    options: &'a Rebuild,
    /// The events parked before the rebuild, by position.
    judged: BTreeMap<Position, Parked>,
}

impl Replay<'_> {
    /// Applies `batch`, parking what cannot be read; how many events it
    /// parked that were not parked before.
    async fn apply(&self, batch: &[RecordedEvent]) -> Result<u64, ProjectorError> {
        let mut rest = batch;
        let mut parked = 0;
        while let Some((position, error, attempts)) = self.apply_or_poison(rest).await? {
            let Some(index) = rest.iter().position(|event| event.position == position) else {
                return Err(error);
            };
            if index > 0 {
                runner::apply(self.transaction, self.projection, &rest[..index]).await?;
            }
            if let Some(before) = self.judged.get(&position) {
                parked::restore(self.transaction, before.clone()).await?;
            } else {
                let poison = Poison {
                    position,
                    error: error.to_string(),
                    parked_by: &self.options.parked_by,
                    attempts,
                };
                if quarantine::park_event(self.transaction, self.projection, &rest[index], poison).await? {
                    parked += 1;
                }
            }
            rest = &rest[index + 1..];
        }
        Ok(parked)
    }

    /// Applies `events`; when one cannot be read, tries again (an event
    /// parked before: not again) and then answers which, why and after
    /// how many attempts, having written nothing.
    async fn apply_or_poison(
        &self,
        events: &[RecordedEvent],
    ) -> Result<Option<(Position, ProjectorError, u32)>, ProjectorError> {
        let mut attempts = Attempts::default();
        loop {
            if events.is_empty() {
                return Ok(None);
            }
            let error = match runner::apply(self.transaction, self.projection, events).await {
                Ok(()) => return Ok(None),
                Err(error) => error,
            };
            let Some(position) = quarantine::poisoned(&error) else {
                return Err(error);
            };
            let failed = attempts.failed_at(position);
            if failed >= self.options.quarantine.attempts || self.judged.contains_key(&position) {
                return Ok(Some((position, error, failed)));
            }
            tracing::warn!(projection = self.projection.name(), %position, attempt = failed, %error, "replay cannot read an event; trying again");
            tokio::time::sleep(self.options.quarantine.pause).await;
        }
    }
}
