//! Where the saga resumes after a restart, kept in the event store itself
//! (the command side writes nothing else) as a stream of snapshots.

use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, StoreError, StreamName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream of the saga's checkpoints, one snapshot per save.
pub const STREAM: &str = "checkpoint-order-saga";
const EVENT_TYPE: &str = "SagaCheckpointed";

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// The saga resumes strictly after this position; `None` means from the
    /// start of the log.
    after: Option<String>,
}

fn stream() -> StreamName {
    StreamName::new(STREAM).expect("the checkpoint stream name is valid")
}

pub async fn load(store: &dyn EventStore) -> Result<Option<Position>, StoreError> {
    let Some(last) = store.read_last(&stream()).await? else {
        return Ok(None);
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        position: last.position,
        detail,
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&last.data).map_err(|e| corrupt(e.to_string()))?;
    checkpoint
        .after
        .map(|after| after.parse().map_err(|e| corrupt(format!("position {after:?}: {e}"))))
        .transpose()
}

pub async fn save(store: &dyn EventStore, after: Option<Position>) -> Result<(), StoreError> {
    let checkpoint = Checkpoint {
        after: after.map(|p| p.to_string()),
    };
    let event = NewEvent {
        id: Uuid::now_v7(),
        event_type: EVENT_TYPE.to_owned(),
        data: serde_json::to_vec(&checkpoint).expect("a checkpoint always serializes"),
        metadata: EventMetadata {
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            user_id: None,
            schema_version: 1,
        },
    };
    store.append(&stream(), ExpectedRevision::Any, vec![event]).await?;
    Ok(())
}
