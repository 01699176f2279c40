//! What commands take from their requests: the correlation and trace ids,
//! path ids.

use domain::validation::{InvalidField, Problem};
use poem::Request;
use uuid::Uuid;

use api_common::problem::ProblemResponse;
use api_common::request_span::RequestIds;

use crate::aggregates::Causation;

/// The causation of a request by `user`: its request id (from
/// `X-Request-Id`, see [`api_common::request_span::request_id`]) as the
/// correlation id, and its `traceparent`'s trace id.
pub fn causation(request: &Request, user: Option<Uuid>) -> Causation {
    let ids = RequestIds::of(request);
    Causation {
        trace_id: ids.trace_id,
        ..Causation::request(ids.request_id, user)
    }
}

/// The `id` path segment as a UUID, hyphenated as its schema says
/// ([`super::fields::UUID_PATTERN`]).
pub fn path_id(id: &str) -> Result<Uuid, ProblemResponse> {
    Some(id)
        .filter(|id| id.len() == 36)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ProblemResponse::invalid(&InvalidField::new("id", Problem::Malformed { what: "UUID" })))
}
