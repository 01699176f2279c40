//! The saga's parked events, recorded in the event store itself (the
//! command side talks to nothing else) as the stream `saga-parked`: every
//! replica folds the same list, and a restart keeps it. Three event types:
//! `EventParked` (an event the saga could not handle, with why), then
//! `ParkedEventRetryFailed` (a retry that failed again) and
//! `ParkedEventResolved` (retried with success, or skipped for good).
//! Projectors pass over these types: they know none of them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::ids::OrderId;
use event_store::{
    EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, StoreError, StreamName,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream of the saga's parked events.
pub const STREAM: &str = "saga-parked";
const PARKED: &str = "EventParked";
const RETRY_FAILED: &str = "ParkedEventRetryFailed";
const RESOLVED: &str = "ParkedEventResolved";
/// Appends tried before a park gives up on other writers of the stream.
const APPEND_ATTEMPTS: usize = 8;

/// An event the saga parked, and where to pick its order up again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedEvent {
    pub subscriber: String,
    pub position: Position,
    pub stream: String,
    pub revision: u64,
    pub event_type: String,
    /// The order held back until it is resolved, when known.
    pub order_id: Option<OrderId>,
    pub error: String,
    /// The process that parked it.
    pub instance: String,
    pub attempts: u32,
    pub parked_at: DateTime<Utc>,
    /// Where the order's events are read again from once it is resolved.
    pub replay_after: Option<Position>,
    /// Whether that replay starts from nothing known of the order (it was
    /// being reserved, or this is its placement); otherwise from what the
    /// order's stream says.
    pub replay_from_start: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryFailed {
    position: Position,
    error: String,
    attempts: u32,
    by: Option<Uuid>,
}

/// How a parked event left the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Resolution {
    Retried,
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resolved {
    position: Position,
    resolution: Resolution,
    by: Option<Uuid>,
}

/// What one record of the stream changed in the list.
#[derive(Debug)]
pub(crate) enum Change {
    Parked(ParkedEvent),
    Resolved(ParkedEvent),
    Nothing,
}

/// The list folded from the stream.
#[derive(Debug, Default, Clone)]
pub struct ParkedList {
    /// The stream's last revision folded.
    revision: Option<u64>,
    parked: BTreeMap<Position, ParkedEvent>,
    skipped: BTreeSet<Position>,
}

impl ParkedList {
    /// The events parked now, oldest first.
    pub fn parked(&self) -> impl Iterator<Item = &ParkedEvent> {
        self.parked.values()
    }

    pub fn get(&self, position: Position) -> Option<&ParkedEvent> {
        self.parked.get(&position)
    }

    /// Whether the saga passes over the event at `position`: parked now, or
    /// skipped for good.
    pub fn passes_over(&self, position: Position) -> bool {
        self.parked.contains_key(&position) || self.skipped.contains(&position)
    }

    /// Whether `order` waits for a parked event.
    pub fn holds(&self, order: OrderId) -> bool {
        self.parked.values().any(|parked| parked.order_id == Some(order))
    }

    /// Folds one record of the stream in; a record it folded already
    /// changes nothing.
    pub(crate) fn apply(&mut self, recorded: &RecordedEvent) -> Change {
        if self.revision.is_some_and(|revision| recorded.revision <= revision) {
            return Change::Nothing;
        }
        self.revision = Some(recorded.revision);
        self.apply_data(&recorded.event_type, &recorded.data)
    }

    fn apply_data(&mut self, event_type: &str, data: &[u8]) -> Change {
        match event_type {
            PARKED => match serde_json::from_slice::<ParkedEvent>(data) {
                Ok(parked) if !self.parked.contains_key(&parked.position) => {
                    self.skipped.remove(&parked.position);
                    self.parked.insert(parked.position, parked.clone());
                    Change::Parked(parked)
                }
                _ => Change::Nothing,
            },
            RETRY_FAILED => {
                if let Ok(failed) = serde_json::from_slice::<RetryFailed>(data)
                    && let Some(parked) = self.parked.get_mut(&failed.position)
                {
                    parked.attempts = failed.attempts;
                    parked.error = failed.error;
                }
                Change::Nothing
            }
            RESOLVED => match serde_json::from_slice::<Resolved>(data) {
                Ok(resolved) => self.resolve(resolved),
                Err(_) => Change::Nothing,
            },
            _ => Change::Nothing,
        }
    }

    fn resolve(&mut self, resolved: Resolved) -> Change {
        let Some(parked) = self.parked.remove(&resolved.position) else {
            return Change::Nothing;
        };
        if resolved.resolution == Resolution::Skipped {
            self.skipped.insert(resolved.position);
        }
        Change::Resolved(parked)
    }
}

fn stream() -> StreamName {
    StreamName::new(STREAM).expect("the parked stream name is valid")
}

/// The whole list as the stream says now.
pub async fn load(store: &dyn EventStore) -> Result<ParkedList, StoreError> {
    let mut list = ParkedList::default();
    for recorded in event_store::read_whole_stream(store, &stream()).await? {
        list.apply(&recorded);
    }
    Ok(list)
}

/// The list a saga resuming after `resume` starts with: every record up to
/// there, and the parks after it (their events are passed over at once);
/// resolutions after it come through the saga's subscription, which then
/// picks their orders up again.
pub(crate) async fn load_at(store: &dyn EventStore, resume: Option<Position>) -> Result<ParkedList, StoreError> {
    let mut list = ParkedList::default();
    let mut later = ParkedList::default();
    for recorded in event_store::read_whole_stream(store, &stream()).await? {
        let seen = match (recorded.global_position(), resume) {
            (Some(position), Some(resume)) => position <= resume,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if seen {
            list.apply(&recorded);
        } else if let Change::Parked(parked) = later.apply(&recorded)
            && !list.skipped.contains(&parked.position)
        {
            list.parked.entry(parked.position).or_insert(parked);
        }
    }
    Ok(list)
}

/// Records `parked` unless its event is parked or skipped already (another
/// replica got there first): `true` when this call recorded it. Appends at
/// the revision it read, so two replicas never record one event twice.
pub async fn park(store: &dyn EventStore, parked: &ParkedEvent) -> Result<bool, StoreError> {
    let data = serde_json::to_vec(parked).expect("a parked event serializes");
    for _ in 0..APPEND_ATTEMPTS {
        let list = load(store).await?;
        if list.passes_over(parked.position) {
            return Ok(false);
        }
        match append(store, &list, PARKED, data.clone()).await {
            Ok(()) => return Ok(true),
            Err(StoreError::WrongExpectedRevision { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(contended())
}

/// Records that a retry of the event at `position` failed again with
/// `error`; the record as it is now, `None` when nothing is parked there.
pub async fn retry_failed(
    store: &dyn EventStore,
    position: Position,
    error: String,
    by: Option<Uuid>,
) -> Result<Option<ParkedEvent>, StoreError> {
    for _ in 0..APPEND_ATTEMPTS {
        let list = load(store).await?;
        let Some(mut parked) = list.get(position).cloned() else {
            return Ok(None);
        };
        parked.attempts = parked.attempts.saturating_add(1);
        parked.error = error.clone();
        let failed = RetryFailed {
            position,
            error: error.clone(),
            attempts: parked.attempts,
            by,
        };
        let data = serde_json::to_vec(&failed).expect("a retry failure serializes");
        match append(store, &list, RETRY_FAILED, data).await {
            Ok(()) => return Ok(Some(parked)),
            Err(StoreError::WrongExpectedRevision { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(contended())
}

/// Takes the event at `position` off the list; the record it was, `None`
/// when nothing is parked there (never parked, or resolved already).
pub async fn resolve(
    store: &dyn EventStore,
    position: Position,
    resolution: Resolution,
    by: Option<Uuid>,
) -> Result<Option<ParkedEvent>, StoreError> {
    let data = serde_json::to_vec(&Resolved {
        position,
        resolution,
        by,
    })
    .expect("a resolution serializes");
    for _ in 0..APPEND_ATTEMPTS {
        let list = load(store).await?;
        let Some(parked) = list.get(position).cloned() else {
            return Ok(None);
        };
        match append(store, &list, RESOLVED, data.clone()).await {
            Ok(()) => return Ok(Some(parked)),
            Err(StoreError::WrongExpectedRevision { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(contended())
}

async fn append(store: &dyn EventStore, list: &ParkedList, event_type: &str, data: Vec<u8>) -> Result<(), StoreError> {
    let event = NewEvent {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        data,
        metadata: EventMetadata {
            correlation_id: Uuid::now_v7(),
            trace_id: None,
            causation_id: None,
            user_id: None,
            schema_version: 1,
        },
    };
    store
        .append(&stream(), ExpectedRevision::after(list.revision), vec![event])
        .await
        .map(|_| ())
}

fn contended() -> StoreError {
    StoreError::Unavailable {
        context: "recording a parked event",
        source: "others kept appending to the parked stream".into(),
    }
}
