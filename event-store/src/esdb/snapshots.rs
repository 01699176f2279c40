//! Snapshots and max counts on EventStoreDB: a snapshot is an event of the
//! stream `snapshot-{stream}`, which keeps only its last event (`$maxCount`
//! 1), so reading the latest is reading that stream's last event.

use eventstore::{AppendToStreamOptions, Client, EventData, StreamMetadata};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::from_esdb_position;
use crate::{EventMetadata, Position, Snapshot, StoreError, StreamName};

const EVENT_TYPE: &str = "Snapshot";

/// Every this many snapshots of a stream its `$maxCount` is set again: a
/// crash between a stream's first snapshot and its metadata then leaves a
/// few snapshots too many, not a stream that grows.
const METADATA_EVERY: u64 = 64;

/// What the snapshot event holds: the snapshot's fields around its JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    revision: u64,
    position: Option<String>,
    version: u32,
    #[serde(borrow)]
    state: &'a RawValue,
}

pub(super) fn stream_of(stream: &StreamName) -> String {
    format!("snapshot-{stream}")
}

pub(super) async fn write(client: &Client, stream: &StreamName, snapshot: &Snapshot) -> Result<(), StoreError> {
    let event = encode(snapshot)?;
    let name = stream_of(stream);
    let written = client
        .append_to_stream(name.as_str(), &AppendToStreamOptions::default(), event)
        .await
        .map_err(|e| StoreError::unavailable("writing a snapshot to EventStoreDB", e))?;
    if written.next_expected_version.is_multiple_of(METADATA_EVERY) {
        set_max_count(client, &name, 1).await?;
    }
    Ok(())
}

pub(super) async fn set_max_count(client: &Client, stream: &str, max_count: u64) -> Result<(), StoreError> {
    let metadata = StreamMetadata::builder().max_count(max_count).build();
    client
        .set_stream_metadata(stream, &AppendToStreamOptions::default(), &metadata)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::unavailable("setting a stream's $maxCount on EventStoreDB", e))
}

fn encode(snapshot: &Snapshot) -> Result<EventData, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::InvalidEvent { reason: e.to_string() };
    let data = encode_data(snapshot)?;
    let data: &RawValue = serde_json::from_slice(&data).map_err(invalid)?;
    // Shop's metadata, so that global readers take it as any other event of
    // a stream they do not follow.
    let metadata = EventMetadata {
        correlation_id: Uuid::now_v7(),
        trace_id: None,
        causation_id: None,
        user_id: None,
        schema_version: 1,
    };
    EventData::json(EVENT_TYPE, &data)
        .and_then(|event| event.id(Uuid::now_v7()).metadata_as_json(&metadata))
        .map_err(invalid)
}

/// The snapshot event's data.
fn encode_data(snapshot: &Snapshot) -> Result<Vec<u8>, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::InvalidEvent { reason: e.to_string() };
    let envelope = Envelope {
        revision: snapshot.revision,
        position: snapshot.position.map(|p| p.to_string()),
        version: snapshot.version,
        state: serde_json::from_slice(&snapshot.data).map_err(invalid)?,
    };
    serde_json::to_vec(&envelope).map_err(invalid)
}

pub(super) fn decode(event: &eventstore::RecordedEvent) -> Result<Snapshot, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        position: from_esdb_position(event.position),
        detail: format!("snapshot in {}: {detail}", event.stream_id),
    };
    let envelope: Envelope<'_> = serde_json::from_slice(&event.data).map_err(|e| corrupt(e.to_string()))?;
    let position = envelope
        .position
        .map(|p| {
            p.parse::<Position>()
                .map_err(|e| corrupt(format!("position {p:?}: {e}")))
        })
        .transpose()?;
    Ok(Snapshot {
        revision: envelope.revision,
        position,
        version: envelope.version,
        data: envelope.state.get().as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot event as the client hands it over after reading it.
    fn recorded(snapshot: &Snapshot) -> eventstore::RecordedEvent {
        eventstore::RecordedEvent {
            stream_id: "snapshot-product-1".to_owned(),
            id: Uuid::nil(),
            revision: 0,
            event_type: EVENT_TYPE.to_owned(),
            data: encode_data(snapshot).unwrap().into(),
            metadata: Default::default(),
            custom_metadata: Vec::new().into(),
            is_json: true,
            position: eventstore::Position {
                commit: u64::MAX,
                prepare: u64::MAX,
            },
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_snapshot_event_reads_back_as_written() {
        for position in [Some(Position::new(7, 5)), None] {
            let snapshot = Snapshot {
                revision: 41,
                position,
                version: 3,
                data: br#"{"held":{"a":1},"list":[1,2]}"#.to_vec(),
            };
            assert!(encode(&snapshot).is_ok());
            assert_eq!(decode(&recorded(&snapshot)).unwrap(), snapshot);
        }
    }

    #[test]
    fn a_snapshot_of_other_bytes_is_corrupt() {
        let mut event = recorded(&Snapshot {
            revision: 1,
            position: None,
            version: 1,
            data: b"{}".to_vec(),
        });
        event.data = b"not json".to_vec().into();
        assert!(matches!(decode(&event), Err(StoreError::Corrupt { .. })));
    }
}
