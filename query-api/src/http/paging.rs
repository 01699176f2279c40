//! Page sizes and cursors.

use api_common::problem::ProblemResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::validation::{InvalidField, Problem};

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// `limit`, 1 to 100, 20 when absent.
pub fn limit(raw: Option<i64>) -> Result<u64, ProblemResponse> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT as i64).contains(&limit) => Ok(limit as u64),
        Some(_) => Err(ProblemResponse::invalid(&InvalidField::new(
            "limit",
            Problem::OutOfRange { min: 1, max: MAX_LIMIT },
        ))),
    }
}

/// `offset`, 0 or more.
pub fn offset(raw: Option<i64>) -> Result<u64, ProblemResponse> {
    match raw {
        None => Ok(0),
        Some(offset) if offset >= 0 => Ok(offset as u64),
        Some(_) => Err(ProblemResponse::invalid(&InvalidField::new(
            "offset",
            Problem::OutOfRange {
                min: 0,
                max: i64::MAX as u64,
            },
        ))),
    }
}

/// An opaque cursor around `key`.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key inside a cursor this API handed out.
pub fn decode_cursor(cursor: &str) -> Result<String, ProblemResponse> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ProblemResponse::invalid(&InvalidField::new("cursor", Problem::Malformed { what: "cursor" })))
}
