//! Replacing the live generation: promotion (the next generation becomes
//! live, the live one previous), rollback (the previous generation and the
//! live one change places) and dropping a generation.
//!
//! Each is one transaction holding the locks of every generation it
//! touches: the generation coming in is first caught up in batches, then
//! topped up to the live one's position under the locks, and the tables,
//! checkpoints, parked events and records change names together. On
//! Postgres the renames take the tables' exclusive locks until the commit,
//! so a read waits those few milliseconds and then reads the new live
//! tables; on SQLite readers keep reading the old ones until the commit.
//! Either way no reader sees an empty or half-built table, and the
//! projector of the live generation finds its checkpoint moved and goes on
//! from the new one.

use event_store::Position;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend};
use views::checkpoint;

use super::rebuild::Rebuilder;
use super::verify::level;
use super::{GenerationError, Slot, record, tables};
use crate::database;
use crate::parked;
use crate::projection::Projection;

/// Makes the next generation live and keeps the live one as the previous
/// one (dropping the previous one before it). It must have been verified
/// against the live generation: clean, or with `accept_differences`.
pub async fn promote(rebuilder: &Rebuilder, accept_differences: bool) -> Result<Option<Position>, GenerationError> {
    let projection = rebuilder.projection.as_ref();
    let name = projection.name();
    promotable(&rebuilder.db, name, accept_differences).await?;
    rebuilder.catch_up(Slot::Next).await?;
    let transaction = locked(rebuilder, &[Slot::Live, Slot::Next, Slot::Previous]).await?;
    // Again under the locks: another process may have begun, promoted or
    // dropped a next generation since.
    promotable(&transaction, name, accept_differences).await?;
    present(&transaction, projection, Slot::Next).await?;
    same_columns(&transaction, projection, Slot::Next).await?;
    let position = level(rebuilder, &transaction, [Slot::Next, Slot::Live]).await?;
    remove_in(&transaction, projection, Slot::Previous).await?;
    rename(&transaction, projection, Slot::Live, Slot::Previous).await?;
    rename(&transaction, projection, Slot::Next, Slot::Live).await?;
    transaction.commit().await?;
    refresh_gauges(rebuilder).await?;
    tracing::info!(projection = name, position = ?position.map(|p| p.to_string()), "next generation promoted");
    Ok(position)
}

/// Refuses to promote `projection`'s next generation unless it has one
/// that was verified clean, or with differences accepted.
async fn promotable(
    db: &impl ConnectionTrait,
    name: &'static str,
    accept_differences: bool,
) -> Result<(), GenerationError> {
    let Some(next) = record::of(db, name, Slot::Next).await? else {
        return Err(GenerationError::Missing {
            projection: name,
            slot: Slot::Next,
        });
    };
    match next.differences {
        None => Err(GenerationError::NotVerified(name)),
        Some(differences) if differences > 0 && !accept_differences => Err(GenerationError::Differs {
            projection: name,
            differences: differences as u64,
        }),
        Some(_) => Ok(()),
    }
}

/// Refuses when `projection` has no generation in `slot`.
async fn present(
    transaction: &DatabaseTransaction,
    projection: &dyn Projection,
    slot: Slot,
) -> Result<(), GenerationError> {
    if tables::exist(transaction, projection.tables(), slot).await? {
        return Ok(());
    }
    Err(GenerationError::Missing {
        projection: projection.name(),
        slot,
    })
}

/// Makes the previous generation live again and keeps the live one as the
/// previous one: rolling back twice gives back what was live.
pub async fn roll_back(rebuilder: &Rebuilder) -> Result<Option<Position>, GenerationError> {
    let projection = rebuilder.projection.as_ref();
    let name = projection.name();
    if !rebuilder.has(Slot::Previous).await? {
        return Err(GenerationError::Missing {
            projection: name,
            slot: Slot::Previous,
        });
    }
    rebuilder.catch_up(Slot::Previous).await?;
    let transaction = locked(rebuilder, &[Slot::Live, Slot::Previous, Slot::Swapping]).await?;
    present(&transaction, projection, Slot::Previous).await?;
    same_columns(&transaction, projection, Slot::Previous).await?;
    let position = level(rebuilder, &transaction, [Slot::Previous, Slot::Live]).await?;
    rename(&transaction, projection, Slot::Live, Slot::Swapping).await?;
    rename(&transaction, projection, Slot::Previous, Slot::Live).await?;
    rename(&transaction, projection, Slot::Swapping, Slot::Previous).await?;
    transaction.commit().await?;
    refresh_gauges(rebuilder).await?;
    tracing::info!(projection = name, "previous generation live again");
    Ok(position)
}

/// Drops the generation in `slot` (never the live one): its tables,
/// checkpoint, parked events and record. `false` when there was none.
pub async fn remove(rebuilder: &Rebuilder, slot: Slot) -> Result<bool, GenerationError> {
    assert_ne!(slot, Slot::Live, "the live generation is never dropped");
    let projection = rebuilder.projection.as_ref();
    let transaction = locked(rebuilder, &[slot]).await?;
    let existed = tables::exist(&transaction, projection.tables(), slot).await?
        || record::of(&transaction, projection.name(), slot).await?.is_some();
    remove_in(&transaction, projection, slot).await?;
    transaction.commit().await?;
    parked::refresh_gauge(&rebuilder.db, &slot.name(projection.name())).await?;
    Ok(existed)
}

/// A write transaction holding the locks of `slots`' generations, taken
/// in name order so that two swaps never wait for each other.
pub(super) async fn locked(rebuilder: &Rebuilder, slots: &[Slot]) -> Result<DatabaseTransaction, GenerationError> {
    let name = rebuilder.projection.name();
    let mut keys: Vec<String> = slots.iter().map(|slot| slot.name(name)).collect();
    keys.sort();
    let transaction = database::begin_write(&rebuilder.db).await?;
    for key in &keys {
        database::lock_projection(&transaction, key).await?;
    }
    if transaction.get_database_backend() == DbBackend::Postgres {
        // A rename waits for the readers of the table, and every read that
        // comes after waits behind it: better to give up (and be tried
        // again) than to hold readers up past their statement timeout.
        transaction
            .execute_unprepared(&format!("SET LOCAL lock_timeout = '{}ms'", LOCK_TIMEOUT.as_millis()))
            .await?;
    }
    Ok(transaction)
}

/// How long a swap waits for the tables it renames (Postgres).
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Refuses when a table's columns differ between `slot` and the live
/// generation.
async fn same_columns(
    transaction: &DatabaseTransaction,
    projection: &dyn Projection,
    slot: Slot,
) -> Result<(), GenerationError> {
    for table in projection.tables() {
        let live = tables::columns(transaction, table.name).await?;
        if live != tables::columns(transaction, &slot.name(table.name)).await? {
            return Err(GenerationError::ColumnsDiffer {
                table: table.name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Gives the generation in `from` the names of `to` (which has none).
async fn rename(
    transaction: &DatabaseTransaction,
    projection: &dyn Projection,
    from: Slot,
    to: Slot,
) -> Result<(), GenerationError> {
    let name = projection.name();
    tables::rename(transaction, projection.tables(), from, to).await?;
    checkpoint::rename(transaction, &from.name(name), &to.name(name)).await?;
    parked::rename(transaction, &from.name(name), &to.name(name)).await?;
    record::rename(transaction, name, from, to).await?;
    Ok(())
}

async fn remove_in(
    transaction: &DatabaseTransaction,
    projection: &dyn Projection,
    slot: Slot,
) -> Result<(), GenerationError> {
    let key = slot.name(projection.name());
    tables::remove(transaction, projection.tables(), slot).await?;
    checkpoint::overwrite(transaction, &key, None).await?;
    parked::remove_all(transaction, &key).await?;
    record::remove(transaction, projection.name(), slot).await?;
    Ok(())
}

async fn refresh_gauges(rebuilder: &Rebuilder) -> Result<(), GenerationError> {
    for slot in [Slot::Live, Slot::Next, Slot::Previous] {
        parked::refresh_gauge(&rebuilder.db, &slot.name(rebuilder.projection.name())).await?;
    }
    Ok(())
}
