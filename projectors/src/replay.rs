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
//! The rows are emptied with `DELETE`, not `TRUNCATE`, which would lock
//! readers out on Postgres.

use event_store::{EventStore, Position, StreamFilter};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use views::checkpoint;

use crate::database;
use crate::projection::Projection;
use crate::runner::{self, ProjectorError};

/// Rebuilds `projection` from the log in batches of `batch_size`; returns
/// the position it reached (`None` for an empty log).
pub async fn rebuild(
    store: &dyn EventStore,
    db: &DatabaseConnection,
    projection: &dyn Projection,
    batch_size: usize,
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
    let mut applied = None;
    while applied < head {
        let batch = store.read_all(applied, batch_size, &StreamFilter::all()).await?;
        let batch: Vec<_> = batch
            .into_iter()
            .take_while(|event| Some(event.position) <= head)
            .collect();
        let Some(last) = batch.last().map(|event| event.position) else {
            break;
        };
        runner::apply(&transaction, projection, &batch).await?;
        applied = Some(last);
    }
    checkpoint::overwrite(&transaction, name, applied).await?;
    transaction.commit().await?;
    Ok(applied)
}
