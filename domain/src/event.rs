//! How domain events become stored events and back.
//!
//! Each aggregate has one event enum, serialized by serde as adjacently
//! tagged JSON: the hand-written `#[serde(rename = "...")]` of each variant is
//! its stable type name, and the payload is stored without the tag. The
//! schema version travels in the event's metadata; a reader that meets a
//! newer version than it knows refuses it instead of guessing.

use serde::Serialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess};

/// A domain event ready for the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not one of this aggregate's events; readers pass such events over.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("event {event_type:?} has schema version {found}, this build reads versions 1 to {supported}")]
    UnsupportedVersion {
        event_type: String,
        found: u32,
        supported: u32,
    },
    #[error("event {event_type:?} has a malformed payload: {source}")]
    Malformed {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A domain event that serde could not turn into JSON: a bug in its
/// `Serialize`, never bad input.
#[derive(Debug, thiserror::Error)]
#[error("event could not be serialized: {0}")]
pub struct EncodeError(#[source] serde_json::Error);

/// The events of one aggregate.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The stream category: streams are named `{CATEGORY}-{id}`.
    const CATEGORY: &'static str;
    /// The schema version this build writes and reads.
    const SCHEMA_VERSION: u32 = 1;
    /// Every type name of the enum, for filters and tests.
    const EVENT_TYPES: &'static [&'static str];

    /// The schema versions [`DomainEvent::decode`] reads: every version an
    /// earlier build wrote, up to the one this build writes. The golden
    /// corpus (`domain/corpus/`) holds a sample of each type at each of
    /// them, so a version added or dropped here shows in its test.
    fn readable_versions() -> std::ops::RangeInclusive<u32> {
        1..=Self::SCHEMA_VERSION
    }

    fn stream_name(id: impl std::fmt::Display) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }

    /// What every stream of this aggregate starts with, for subscription
    /// filters.
    fn stream_prefix() -> String {
        format!("{}-", Self::CATEGORY)
    }

    /// The id part of `stream` if it is one of this aggregate's streams.
    fn id_in_stream(stream: &str) -> Option<&str> {
        stream.strip_prefix(Self::CATEGORY)?.strip_prefix('-')
    }

    /// Like [`DomainEvent::decode`], but an event type this build does not
    /// know is `None`: readers pass such events over.
    fn decode_known(event_type: &str, schema_version: u32, data: &[u8]) -> Result<Option<Self>, DecodeError> {
        match Self::decode(event_type, schema_version, data) {
            Ok(event) => Ok(Some(event)),
            Err(DecodeError::UnknownType(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn encode(&self) -> Result<EncodedEvent, EncodeError> {
        let tagged = serde_json::to_vec(self).map_err(EncodeError)?;
        let Some((event_type, payload)) = untag(&tagged) else {
            unreachable!("an event enum is adjacently tagged, and each of its variants has fields")
        };
        let event_type = event_type.to_owned();
        let payload = payload.clone();
        let mut data = tagged;
        data.truncate(payload.end);
        data.drain(..payload.start);
        Ok(EncodedEvent {
            event_type,
            schema_version: Self::SCHEMA_VERSION,
            data,
        })
    }

    fn decode(event_type: &str, schema_version: u32, data: &[u8]) -> Result<Self, DecodeError> {
        if !Self::EVENT_TYPES.contains(&event_type) {
            return Err(DecodeError::UnknownType(event_type.to_owned()));
        }
        if !Self::readable_versions().contains(&schema_version) {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                found: schema_version,
                supported: Self::SCHEMA_VERSION,
            });
        }
        let malformed = |source| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            source,
        };
        Self::deserialize(MapAccessDeserializer::new(Tagged::new(event_type, data))).map_err(malformed)
    }
}

/// The type name and where the payload is in `tagged`, the JSON serde_json
/// writes for a variant of an adjacently tagged enum: compact, the tag
/// first, `{"type":"Name","data":payload}`. Slicing it saves building a
/// `serde_json::Value` and writing it out again, which was most of the
/// cost of encoding (#15). The names are the enums' own renames, plain
/// words that JSON writes without escapes.
fn untag(tagged: &[u8]) -> Option<(&str, std::ops::Range<usize>)> {
    const TAG: &[u8] = br#"{"type":""#;
    const DATA: &[u8] = br#"","data":"#;
    let rest = tagged.strip_prefix(TAG)?;
    let name_length = rest.iter().position(|&byte| byte == b'"')?;
    let name = std::str::from_utf8(&rest[..name_length]).ok()?;
    if name.contains('\\') || !rest[name_length..].starts_with(DATA) || tagged.last() != Some(&b'}') {
        return None;
    }
    let start = TAG.len() + name_length + DATA.len();
    Some((name, start..tagged.len() - 1))
}

/// A stored event as serde reads an adjacently tagged enum, the map
/// `{"type": event_type, "data": payload}`, with the payload parsed
/// straight from its bytes: no `serde_json::Value` built and read again,
/// which was most of the cost of decoding (#15). The tag comes first, so
/// serde picks the variant before it reads the payload.
struct Tagged<'a> {
    event_type: &'a str,
    data: &'a [u8],
    next: Field,
}

/// The entry of [`Tagged`] read next.
#[derive(Clone, Copy)]
enum Field {
    Type,
    Data,
    Done,
}

impl<'a> Tagged<'a> {
    fn new(event_type: &'a str, data: &'a [u8]) -> Self {
        Self {
            event_type,
            data,
            next: Field::Type,
        }
    }
}

impl<'a> MapAccess<'a> for Tagged<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let key = match self.next {
            Field::Type => "type",
            Field::Data => "data",
            Field::Done => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        match self.next {
            Field::Type => {
                self.next = Field::Data;
                seed.deserialize(self.event_type.into_deserializer())
            }
            Field::Data => {
                self.next = Field::Done;
                // The whole payload is one JSON value: nothing may follow it.
                let mut payload = serde_json::Deserializer::from_slice(self.data);
                let value = seed.deserialize(&mut payload)?;
                payload.end()?;
                Ok(value)
            }
            Field::Done => Err(serde::de::Error::custom("a value asked for after the payload")),
        }
    }
}

/// Asserts that every variant in `events` round-trips through the store
/// encoding and that `EVENT_TYPES` lists exactly the names in use.
#[cfg(test)]
pub(crate) fn assert_round_trips<E>(events: &[E])
where
    E: DomainEvent + PartialEq + std::fmt::Debug,
{
    let mut seen = std::collections::BTreeSet::new();
    for event in events {
        let encoded = event.encode().expect("encodes");
        assert!(
            E::EVENT_TYPES.contains(&encoded.event_type.as_str()),
            "{} is missing from EVENT_TYPES",
            encoded.event_type
        );
        let decoded = E::decode(&encoded.event_type, encoded.schema_version, &encoded.data).expect("decodes");
        assert_eq!(&decoded, event);
        seen.insert(encoded.event_type);
    }
    assert_eq!(E::id_in_stream(&E::stream_name("1")), Some("1"));
    assert_eq!(E::id_in_stream(&format!("{}x-1", E::CATEGORY)), None);
    let listed: std::collections::BTreeSet<String> = E::EVENT_TYPES.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(seen, listed, "the samples must cover every event type");
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// An aggregate's events in miniature.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Sample {
        #[serde(rename = "Counted", rename_all = "camelCase")]
        Counted { times_seen: u32 },
        #[serde(rename = "Named")]
        Named { name: String },
    }

    impl DomainEvent for Sample {
        const CATEGORY: &'static str = "sample";
        const EVENT_TYPES: &'static [&'static str] = &["Counted", "Named"];
    }

    #[test]
    fn the_type_picks_the_variant_its_payload_fills() {
        let counted = Sample::decode("Counted", 1, br#"{"timesSeen": 3}"#).unwrap();
        assert_eq!(counted, Sample::Counted { times_seen: 3 });
        let named = Sample::decode("Named", 1, br#" {"name": "say \"hi\"\n"} "#).unwrap();
        assert_eq!(
            named,
            Sample::Named {
                name: "say \"hi\"\n".to_owned()
            }
        );
        let encoded = named.encode().unwrap();
        assert_eq!(Sample::decode(&encoded.event_type, 1, &encoded.data).unwrap(), named);
    }

    #[test]
    fn an_event_is_stored_as_its_type_name_and_its_payload_alone() {
        let counted = Sample::Counted { times_seen: 3 }.encode().unwrap();
        assert_eq!(counted.event_type, "Counted");
        assert_eq!(counted.schema_version, 1);
        assert_eq!(counted.data, br#"{"timesSeen":3}"#);
        // A payload that holds what the tag and its end look like.
        let name = r#"x","data":{"y"}"#.to_owned();
        let named = Sample::Named { name: name.clone() }.encode().unwrap();
        assert_eq!(named.event_type, "Named");
        let payload: serde_json::Value = serde_json::from_slice(&named.data).unwrap();
        assert_eq!(payload, serde_json::json!({ "name": name }));
    }

    #[test]
    fn only_the_shape_serde_json_writes_for_a_tagged_variant_is_untagged() {
        assert_eq!(
            untag(br#"{"type":"Named","data":{"name":"a"}}"#),
            Some(("Named", 23..35))
        );
        for odd in [
            r#"{"type":"Named"}"#,
            r#"{"data":{},"type":"Named"}"#,
            r#"{"type":"Na"med","data":{}}"#,
            r#"{"type":"Named","data":{}]"#,
            r#"["Named",{}]"#,
        ] {
            assert_eq!(untag(odd.as_bytes()), None, "{odd}");
        }
    }

    #[test]
    fn a_payload_that_is_not_exactly_one_fitting_json_value_is_malformed() {
        for (event_type, payload) in [
            ("Counted", r#"{"timesSeen": 3} {"timesSeen": 4}"#),
            // An attempt to smuggle in a second tag after the payload.
            ("Counted", r#"{"timesSeen": 3}, "type": "Named""#),
            ("Counted", "not json"),
            ("Counted", ""),
            ("Counted", r#"{"timesSeen": "three"}"#),
            ("Counted", "{}"),
            ("Named", r#"{"timesSeen": 3}"#),
        ] {
            match Sample::decode(event_type, 1, payload.as_bytes()) {
                Err(DecodeError::Malformed { event_type: named, .. }) => assert_eq!(named, event_type, "{payload}"),
                other => panic!("{event_type} {payload:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_type_or_a_newer_version_is_refused_before_the_payload_is_read() {
        assert!(matches!(
            Sample::decode("Vanished", 1, b"{}"),
            Err(DecodeError::UnknownType(name)) if name == "Vanished"
        ));
        assert!(matches!(Sample::decode_known("Vanished", 1, b"not json"), Ok(None)));
        assert!(matches!(
            Sample::decode("Counted", 2, br#"{"timesSeen": 3}"#),
            Err(DecodeError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
    }
}
