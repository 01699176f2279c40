use domain::trace_id::TraceId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{MAX_APPEND_BYTES, MAX_EVENT_TYPE_BYTES};
use crate::{Position, StoreError};

/// Who and what caused an event, stored beside its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// The request or process all resulting events belong to.
    pub correlation_id: Uuid,
    /// The W3C trace (`traceparent`) of the request the correlation started
    /// with, when it came with one. Left out when there is none, and absent
    /// from events written before it was recorded: both read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<TraceId>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// The acting user, if a user acted.
    pub user_id: Option<Uuid>,
    /// The schema version of the event's data.
    pub schema_version: u32,
}

/// An event to append. `data` is JSON. The id makes the append idempotent:
/// appending the same ids again stores nothing new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: EventMetadata,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub stream: String,
    /// Its number in its stream, from 0.
    pub revision: u64,
    pub position: Position,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: EventMetadata,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

impl RecordedEvent {
    /// The event's position in the global log; `None` for an event read
    /// from a stream of a store that does not report it there (older
    /// EventStoreDB servers send `u64::MAX` for both parts).
    pub fn global_position(&self) -> Option<Position> {
        let unknown = self.position.commit == u64::MAX || self.position.prepare == u64::MAX;
        (!unknown).then_some(self.position)
    }
}

/// Checks an append before any adapter sees it: at least one event, named
/// types, JSON data, within the size limit.
pub(crate) fn validate_append(events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidEvent {
            reason: "an append needs at least one event".to_owned(),
        });
    }
    let mut bytes = 0usize;
    for event in events {
        if event.event_type.is_empty() || event.event_type.len() > MAX_EVENT_TYPE_BYTES {
            return Err(StoreError::InvalidEvent {
                reason: format!("event type must be 1 to {MAX_EVENT_TYPE_BYTES} bytes"),
            });
        }
        if event.event_type.starts_with('$') || !event.event_type.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreError::InvalidEvent {
                reason: format!(
                    "event type {:?} must be printable ASCII without spaces, not starting with '$'",
                    event.event_type
                ),
            });
        }
        bytes = bytes
            .saturating_add(event.data.len())
            .saturating_add(metadata_len(&event.metadata));
        if bytes > MAX_APPEND_BYTES {
            return Err(StoreError::TooLarge {
                bytes: events.iter().map(|e| e.data.len() + metadata_len(&e.metadata)).sum(),
                limit: MAX_APPEND_BYTES,
            });
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&event.data).is_err() {
            return Err(StoreError::InvalidEvent {
                reason: format!("data of event {} is not JSON", event.id),
            });
        }
    }
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(StoreError::InvalidEvent {
            reason: "one append carries the same event id twice".to_owned(),
        });
    }
    Ok(())
}

fn metadata_len(metadata: &EventMetadata) -> usize {
    encode_metadata(metadata).len()
}

pub(crate) fn encode_metadata(metadata: &EventMetadata) -> Vec<u8> {
    serde_json::to_vec(metadata).expect("metadata is plain data and always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: &[u8]) -> NewEvent {
        NewEvent {
            id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            data: data.to_vec(),
            metadata: EventMetadata {
                correlation_id: Uuid::new_v4(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
        }
    }

    #[test]
    fn accepts_json_events_within_limits() {
        assert!(validate_append(&[event("Thing", br#"{"a":1}"#), event("Other", b"[]")]).is_ok());
    }

    #[test]
    fn refuses_bad_batches_with_typed_errors() {
        let same = event("Thing", b"{}");
        let cases: Vec<(&str, Vec<NewEvent>)> = vec![
            ("empty batch", vec![]),
            ("empty type", vec![event("", b"{}")]),
            ("system type", vec![event("$metadata", b"{}")]),
            ("space in type", vec![event("a b", b"{}")]),
            ("not json", vec![event("Thing", b"{not json")]),
            ("same id twice", vec![same.clone(), same]),
        ];
        for (name, batch) in cases {
            assert!(
                matches!(validate_append(&batch), Err(StoreError::InvalidEvent { .. })),
                "case {name}"
            );
        }
    }

    #[test]
    fn metadata_without_a_trace_id_reads_as_none_and_is_written_without_one() {
        let written_before = r#"{"correlationId":"019abf00-0000-7000-8000-000000000001","causationId":null,"userId":null,"schemaVersion":1}"#;
        let metadata: EventMetadata = serde_json::from_str(written_before).unwrap();
        assert_eq!(metadata.trace_id, None);
        assert_eq!(encode_metadata(&metadata), written_before.as_bytes());
    }

    #[test]
    fn a_trace_id_is_kept_beside_the_correlation_id() {
        let metadata = EventMetadata {
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap()),
            ..event("Thing", b"{}").metadata
        };
        let encoded = encode_metadata(&metadata);
        let json: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(json["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(serde_json::from_slice::<EventMetadata>(&encoded).unwrap(), metadata);
    }

    #[test]
    fn refuses_oversize_appends() {
        let big = format!("\"{}\"", "x".repeat(MAX_APPEND_BYTES));
        assert!(matches!(
            validate_append(&[event("Thing", big.as_bytes())]),
            Err(StoreError::TooLarge { .. })
        ));
    }
}
