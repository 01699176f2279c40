use crate::limits::MAX_APPEND_BYTES;
use crate::{Position, StoreError};

/// A stream's state folded up to one of its revisions, so that loading it
/// reads the snapshot and only the events after it, not the whole stream.
/// The store keeps the latest snapshot of each stream; the bytes are the
/// writer's own encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The revision of the last event folded in.
    pub revision: u64,
    /// The global position of that event, when the writer knew it.
    pub position: Option<Position>,
    /// The writer's format; a reader skips a version it does not know and
    /// folds the stream from its start instead.
    pub version: u32,
    pub data: Vec<u8>,
}

/// Snapshots are JSON within the append size limit, so both adapters take
/// the same ones (EventStoreDB keeps them as events).
pub(crate) fn validate_snapshot(snapshot: &Snapshot) -> Result<(), StoreError> {
    if snapshot.data.len() > MAX_APPEND_BYTES {
        return Err(StoreError::TooLarge {
            bytes: snapshot.data.len(),
            limit: MAX_APPEND_BYTES,
        });
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&snapshot.data).is_err() {
        return Err(StoreError::InvalidEvent {
            reason: "snapshot data is not JSON".to_owned(),
        });
    }
    Ok(())
}

/// A stream keeps at least its last event: its revision is what the next
/// append expects.
pub(crate) fn validate_max_count(max_count: u64) -> Result<(), StoreError> {
    if max_count == 0 {
        return Err(StoreError::InvalidEvent {
            reason: "a stream keeps at least its last event (max count 0)".to_owned(),
        });
    }
    Ok(())
}
