use std::fmt;
use std::num::NonZeroU128;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of a distributed trace (W3C Trace Context): 16 bytes, never all
/// zero, written as 32 lowercase hex digits. A request that comes with one
/// records it in the metadata of every event it causes, beside the
/// correlation id, so the logs of every process that handles those events
/// can be joined with the caller's trace. Here rather than beside the HTTP
/// parsing because the event metadata and the HTTP services both name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceId(NonZeroU128);

/// Not 32 lowercase hex digits, or all zeros.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a trace id is 32 lowercase hex digits, not all zero")]
pub struct InvalidTraceId;

impl FromStr for TraceId {
    type Err = InvalidTraceId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let lower_hex = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower_hex {
            return Err(InvalidTraceId);
        }
        u128::from_str_radix(raw, 16)
            .ok()
            .and_then(NonZeroU128::new)
            .map(Self)
            .ok_or(InvalidTraceId)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl TryFrom<String> for TraceId {
    type Error = InvalidTraceId;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<TraceId> for String {
    fn from(id: TraceId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip_with_leading_zeros() {
        for raw in ["4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000001"] {
            assert_eq!(raw.parse::<TraceId>().map(|id| id.to_string()), Ok(raw.to_owned()));
        }
    }

    #[test]
    fn refuses_what_is_not_a_trace_id() {
        let cases = [
            ("all zeros", "00000000000000000000000000000000"),
            ("uppercase", "4BF92F3577B34DA6A3CE929D0E0E4736"),
            ("too short", "4bf92f3577b34da6a3ce929d0e0e473"),
            ("too long", "4bf92f3577b34da6a3ce929d0e0e47360"),
            ("not hex", "4bf92f3577b34da6a3ce929d0e0e473g"),
            ("a sign", "+bf92f3577b34da6a3ce929d0e0e4736"),
            ("empty", ""),
        ];
        for (name, raw) in cases {
            assert_eq!(raw.parse::<TraceId>(), Err(InvalidTraceId), "case {name}");
        }
    }

    #[test]
    fn serializes_as_its_hex_string_and_checks_what_it_reads() {
        let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""4bf92f3577b34da6a3ce929d0e0e4736""#);
        assert_eq!(serde_json::from_str::<TraceId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TraceId>(r#""00000000000000000000000000000000""#).is_err());
    }
}
