//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the trace id
//! of an incoming `traceparent` header. Shop takes part in no tracing
//! system of its own; it only records the caller's trace id, so the
//! caller's traces and Shop's logs and events can be joined. A header that
//! is not valid is ignored, as the specification asks: the request goes on
//! without a trace id.

use domain::trace_id::TraceId;

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// `version "-" trace-id "-" parent-id "-" trace-flags`: 2, 32, 16 and 2
/// lowercase hex digits.
const VERSION_00_LEN: usize = 55;

/// The trace id in `header`, a `traceparent` value; `None` when it is not
/// valid. Version `00` must be exactly that format; a later version (`01`
/// to `fe`) is read as `00` where it starts, and may go on only after a
/// dash; `ff` is never valid. Neither id may be all zeros.
pub fn trace_id(header: &str) -> Option<TraceId> {
    let header = header.trim_matches([' ', '\t']).as_bytes();
    let version = header.get(..2)?;
    let fits = match header.len() {
        VERSION_00_LEN => true,
        len => len > VERSION_00_LEN && version != b"00" && header[VERSION_00_LEN] == b'-',
    };
    if !fits || !is_lower_hex(version) || version == b"ff" {
        return None;
    }
    let dashes = [2, 35, 52].iter().all(|&at| header[at] == b'-');
    let (trace, parent, flags) = (&header[3..35], &header[36..52], &header[53..55]);
    let parent_valid = is_lower_hex(parent) && parent.iter().any(|&b| b != b'0');
    if !dashes || !parent_valid || !is_lower_hex(flags) {
        return None;
    }
    std::str::from_utf8(trace).ok()?.parse().ok()
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn reads_the_trace_id_of_valid_headers() {
        let cases = [
            ("sampled", format!("00-{TRACE}-00f067aa0ba902b7-01")),
            ("not sampled", format!("00-{TRACE}-00f067aa0ba902b7-00")),
            ("unknown flags", format!("00-{TRACE}-00f067aa0ba902b7-ff")),
            (
                "spaces and tabs around",
                format!(" \t00-{TRACE}-00f067aa0ba902b7-01 \t"),
            ),
            ("a later version", format!("01-{TRACE}-00f067aa0ba902b7-01")),
            (
                "a later version with more fields",
                format!("cc-{TRACE}-00f067aa0ba902b7-01-what-the-future-will-be-like"),
            ),
        ];
        for (name, header) in cases {
            assert_eq!(
                trace_id(&header).map(|id| id.to_string()).as_deref(),
                Some(TRACE),
                "case {name}"
            );
        }
    }

    #[test]
    fn ignores_headers_that_are_not_valid() {
        let cases = [
            ("empty", String::new()),
            ("version ff", format!("ff-{TRACE}-00f067aa0ba902b7-01")),
            ("uppercase version", format!("0A-{TRACE}-00f067aa0ba902b7-01")),
            ("version not hex", format!("0g-{TRACE}-00f067aa0ba902b7-01")),
            (
                "version 00 with more fields",
                format!("00-{TRACE}-00f067aa0ba902b7-01-more"),
            ),
            ("version 00 too long", format!("00-{TRACE}-00f067aa0ba902b7-011")),
            (
                "a later version going on without a dash",
                format!("cc-{TRACE}-00f067aa0ba902b7-01x"),
            ),
            ("too short", format!("00-{TRACE}-00f067aa0ba902b7-1")),
            (
                "all-zero trace id",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
            ),
            ("all-zero parent id", format!("00-{TRACE}-0000000000000000-01")),
            (
                "uppercase trace id",
                format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
            ),
            ("uppercase parent id", format!("00-{TRACE}-00F067AA0BA902B7-01")),
            (
                "trace id not hex",
                "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01".to_owned(),
            ),
            (
                "trace id one short",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-011".to_owned(),
            ),
            ("parent id not hex", format!("00-{TRACE}-00f067aa0ba902bz-01")),
            ("flags not hex", format!("00-{TRACE}-00f067aa0ba902b7-0g")),
            ("underscores for dashes", format!("00_{TRACE}_00f067aa0ba902b7_01")),
            (
                "non-ASCII",
                "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01".to_owned(),
            ),
        ];
        for (name, header) in cases {
            assert_eq!(trace_id(&header), None, "case {name}: {header:?}");
        }
    }
}
