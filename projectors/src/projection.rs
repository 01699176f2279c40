use async_trait::async_trait;
use domain::event::{DecodeError, DomainEvent};
use event_store::RecordedEvent;
use sea_orm::{DatabaseTransaction, DbErr};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the event cannot be read: {0}")]
    Decode(#[from] DecodeError),
    #[error("the view cannot be written: {0}")]
    Database(#[from] DbErr),
}

/// One denormalized view of the log.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Its stable name: the key of its checkpoint.
    fn name(&self) -> &'static str;

    /// The tables it owns, emptied when it is replayed.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event. Events of other streams, and event types this
    /// build does not know, are passed over; an event that cannot be
    /// applied is an error that stops the projection.
    async fn apply(&self, transaction: &DatabaseTransaction, event: &RecordedEvent) -> Result<(), ApplyError>;
}

/// The event as `E` if it belongs to `E`'s streams and is a type this build
/// knows; `None` otherwise.
pub fn decode<E: DomainEvent>(event: &RecordedEvent) -> Result<Option<E>, DecodeError> {
    if !event
        .stream
        .strip_prefix(E::CATEGORY)
        .is_some_and(|rest| rest.starts_with('-'))
    {
        return Ok(None);
    }
    match E::decode(&event.event_type, event.metadata.schema_version, &event.data) {
        Ok(decoded) => Ok(Some(decoded)),
        Err(DecodeError::UnknownType(_)) => Ok(None),
        Err(error) => Err(error),
    }
}
