use async_trait::async_trait;
use domain::event::{DecodeError, DomainEvent};
use event_store::{Position, RecordedEvent};
use sea_orm::DbErr;

use crate::generations::Writer;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the event at {position} cannot be read: {source}")]
    Decode {
        position: Position,
        #[source]
        source: DecodeError,
    },
    #[error("the view cannot be written: {0}")]
    Database(#[from] DbErr),
}

/// One denormalized view of the log.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Its stable name: the key of its checkpoint.
    fn name(&self) -> &'static str;

    /// Which version of its rows it writes: raise it when `evolve` changes
    /// what a row says for the same events, so that a rebuild's
    /// differences from the live rows are expected, not a fault
    /// (`generations::verify`).
    fn version(&self) -> u32 {
        1
    }

    /// The tables it owns: each generation has a copy of them.
    fn tables(&self) -> &'static [Table];

    /// Applies a batch of events, in log order, to the tables of the
    /// writer's generation, inside its transaction.
    /// Events of other streams, and event types this build does not know,
    /// are passed over; an event that cannot be read is an
    /// [`ApplyError::Decode`] naming it, before anything is written, which
    /// the runner retries and then parks (`quarantine.rs`).
    ///
    /// A projection folds the batch in memory and writes each changed row
    /// once: a batch costs a few statements, not one per event.
    async fn apply(&self, writer: &Writer<'_>, events: &[RecordedEvent]) -> Result<(), ApplyError>;
}

/// A table a projection owns.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// Its primary key's columns, in order: how rows of two generations
    /// are paired, and the order a verification reads them in.
    pub key: &'static [Key],
}

/// A primary key column.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub column: &'static str,
    pub kind: KeyKind,
}

/// What a key column holds, to bind a value of it as the database stores
/// it (a UUID is a native `uuid` on Postgres and 16 bytes on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Uuid,
    Integer,
}

impl Key {
    pub const fn uuid(column: &'static str) -> Self {
        Self {
            column,
            kind: KeyKind::Uuid,
        }
    }

    pub const fn integer(column: &'static str) -> Self {
        Self {
            column,
            kind: KeyKind::Integer,
        }
    }
}

/// The batch's events that belong to `E`'s streams and are types this build
/// knows, decoded, in log order.
pub fn decode_all<E: DomainEvent>(events: &[RecordedEvent]) -> Result<Vec<E>, ApplyError> {
    let mut decoded = Vec::new();
    for event in events {
        if let Some(known) = decode(event).map_err(|source| ApplyError::Decode {
            position: event.position,
            source,
        })? {
            decoded.push(known);
        }
    }
    Ok(decoded)
}

/// The event as `E` if it belongs to `E`'s streams and is a type this build
/// knows; `None` otherwise.
fn decode<E: DomainEvent>(event: &RecordedEvent) -> Result<Option<E>, DecodeError> {
    if E::id_in_stream(&event.stream).is_none() {
        return Ok(None);
    }
    E::decode_known(&event.event_type, event.metadata.schema_version, &event.data)
}
