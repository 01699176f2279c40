//! The quarantine of poison events: an event a projection cannot read (a
//! known type whose payload or schema version this build cannot decode)
//! fails the same way however often it is tried, so after
//! [`Quarantine::attempts`] it is parked (`parked.rs`) and the projection
//! goes on past it, instead of stopping for good. Outages (the store or the
//! database failing) are not poison: they are retried for ever and park
//! nothing.

use std::time::Duration;

use event_store::{Position, RecordedEvent};

use crate::generations::Writer;
use crate::parked::{self, Parking};
use crate::projection::{ApplyError, Projection};
use crate::runner::{self, ProjectorError};

/// How often an event a projection cannot read is tried before it is
/// parked, when `POISON_ATTEMPTS` is unset.
pub const DEFAULT_POISON_ATTEMPTS: u32 = 5;

/// The pause before a projection tries again after a failure.
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How poison events are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarantine {
    /// How many times an event is tried (the first time included) before
    /// it is parked; at least 1.
    pub attempts: u32,
    /// The pause between two attempts (and before a restart after an
    /// outage).
    pub pause: Duration,
}

impl Default for Quarantine {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_POISON_ATTEMPTS,
            pause: DEFAULT_RETRY_PAUSE,
        }
    }
}

/// The position of the event `error` says the projection cannot read;
/// `None` for any other error (an outage).
pub fn poisoned(error: &ProjectorError) -> Option<Position> {
    match error {
        ProjectorError::Apply {
            source: ApplyError::Decode { position, .. },
            ..
        } => Some(*position),
        _ => None,
    }
}

/// The failed attempts at the event a projection is stuck on.
#[derive(Debug, Default)]
pub struct Attempts {
    position: Option<Position>,
    failed: u32,
}

impl Attempts {
    /// Counts a failed attempt at `position` (a new event starts from
    /// one); how many have failed there.
    pub fn failed_at(&mut self, position: Position) -> u32 {
        if self.position != Some(position) {
            *self = Self {
                position: Some(position),
                failed: 0,
            };
        }
        self.failed += 1;
        self.failed
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// What a projection parks: the event, why, who, after how many attempts.
pub struct Poison<'a> {
    pub position: Position,
    pub error: String,
    pub parked_by: &'a str,
    pub attempts: u32,
}

/// In `transaction`, applies the events of `batch` before the poison event
/// and parks the event itself; `true` when it was not parked already. The
/// caller moves the checkpoint to the event in the same transaction.
pub async fn apply_around(
    writer: &Writer<'_>,
    projection: &dyn Projection,
    batch: &[RecordedEvent],
    poison: Poison<'_>,
) -> Result<bool, ProjectorError> {
    let index = batch
        .iter()
        .position(|event| event.position >= poison.position)
        .unwrap_or(batch.len());
    if index > 0 {
        runner::apply(writer, projection, &batch[..index]).await?;
    }
    match batch.get(index) {
        Some(event) if event.position == poison.position => park_event(writer, projection, event, poison).await,
        _ => Ok(false),
    }
}

/// In the writer's transaction, records `event` as parked by the writer's
/// generation of `projection`; `true` when it was not parked already.
pub async fn park_event(
    writer: &Writer<'_>,
    projection: &dyn Projection,
    event: &RecordedEvent,
    poison: Poison<'_>,
) -> Result<bool, ProjectorError> {
    let subscriber = writer.slot.name(projection.name());
    tracing::error!(
        projection = subscriber,
        position = %poison.position,
        stream = event.stream,
        event_type = event.event_type,
        attempts = poison.attempts,
        error = poison.error,
        "event parked: the projection goes on past it"
    );
    let parking = Parking {
        subscriber: &subscriber,
        event,
        error: poison.error,
        parked_by: poison.parked_by,
        attempts: poison.attempts,
        parked_at: chrono::Utc::now(),
    };
    Ok(parked::park(writer.transaction, parking).await?)
}
