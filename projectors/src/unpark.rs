//! What an admin does with a parked event: retry it (apply it now, with the
//! code now deployed) or skip it (drop its record for good). Either
//! happens once: the record goes in the transaction that applies the
//! event, or not at all.
//!
//! A retry applies the event on top of the rows as they are now, after the
//! events that followed it: right for an event whose effect later events do
//! not overwrite (a creation, an order placed); otherwise a replay of the
//! projection, which applies it in its place, is the better cure.

use event_store::{EventStore, Position, RecordedEvent, StreamName};
use sea_orm::{DatabaseConnection, DbErr};

use crate::generations::{Slot, Writer};
use crate::parked::{self, Parked};
use crate::projection::Projection;
use crate::runner::{self, ProjectorError};
use crate::{database, quarantine};

/// How a retry went.
#[derive(Debug, PartialEq, Eq)]
pub enum Retried {
    /// Applied; the record is gone.
    Applied,
    /// Still cannot be handled, for this reason; the record stays, with one
    /// attempt more.
    Failed(String),
    /// No such parked event (or it was retried or skipped meanwhile).
    NotFound,
}

/// Applies the event `projection` parked at `position` again.
pub async fn retry(
    store: &dyn EventStore,
    db: &DatabaseConnection,
    projection: &dyn Projection,
    position: Position,
) -> Result<Retried, ProjectorError> {
    let name = projection.name();
    let Some(row) = parked::find(db, name, position).await? else {
        return Ok(Retried::NotFound);
    };
    let Some(event) = read_again(store, &row, position).await? else {
        let error = format!("the event is no longer in {} at revision {}", row.stream, row.revision);
        parked::failed_again(db, name, position, &error).await?;
        return Ok(Retried::Failed(error));
    };
    let transaction = database::begin_write(db).await?;
    database::lock_projection(&transaction, name).await?;
    let writer = Writer {
        transaction: &transaction,
        slot: Slot::Live,
    };
    match runner::apply(&writer, projection, std::slice::from_ref(&event)).await {
        Ok(()) => {}
        Err(error) if quarantine::poisoned(&error).is_some() => {
            transaction.rollback().await?;
            let error = error.to_string();
            parked::failed_again(db, name, position, &error).await?;
            return Ok(Retried::Failed(error));
        }
        Err(error) => return Err(error),
    }
    if !parked::remove(&transaction, name, position).await? {
        transaction.rollback().await?;
        return Ok(Retried::NotFound);
    }
    transaction.commit().await?;
    parked::refresh_gauge(db, name).await?;
    tracing::info!(projection = name, %position, "parked event retried and applied");
    Ok(Retried::Applied)
}

/// The parked event as the log has it, at its global position (a stream
/// read may not carry it); `None` when it is gone from the log.
async fn read_again(
    store: &dyn EventStore,
    row: &Parked,
    position: Position,
) -> Result<Option<RecordedEvent>, ProjectorError> {
    let Ok(stream) = StreamName::new(row.stream.clone()) else {
        return Ok(None);
    };
    let revision = u64::try_from(row.revision).unwrap_or_default();
    let events = store.read_stream(&stream, revision, 1).await?;
    Ok(events
        .into_iter()
        .find(|event| event.id == row.event_id)
        .map(|event| RecordedEvent { position, ..event }))
}

/// Drops the record of the event `subscriber` parked at `position`; the
/// record dropped, `None` when there was none.
pub async fn skip(db: &DatabaseConnection, subscriber: &str, position: Position) -> Result<Option<Parked>, DbErr> {
    let Some(row) = parked::find(db, subscriber, position).await? else {
        return Ok(None);
    };
    if !parked::remove(db, subscriber, position).await? {
        return Ok(None);
    }
    parked::refresh_gauge(db, subscriber).await?;
    Ok(Some(row))
}
