//! What commands take from their requests: the correlation id, path ids.

use domain::validation::{InvalidField, Problem};
use poem::Request;
use uuid::Uuid;

use api_common::problem::ProblemResponse;

use crate::aggregates::Causation;

const REQUEST_ID: &str = "x-request-id";

/// The causation of a request by `user`: its `X-Request-Id` (a UUID, or any
/// other text mapped to one) or a fresh id.
pub fn causation(request: &Request, user: Option<Uuid>) -> Causation {
    let correlation_id = request
        .header(REQUEST_ID)
        .filter(|id| !id.is_empty())
        .map(|id| Uuid::parse_str(id).unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes())))
        .unwrap_or_else(Uuid::now_v7);
    Causation::request(correlation_id, user)
}

/// The `id` path segment as a UUID, hyphenated as its schema says
/// ([`super::fields::UUID_PATTERN`]).
pub fn path_id(id: &str) -> Result<Uuid, ProblemResponse> {
    Some(id)
        .filter(|id| id.len() == 36)
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ProblemResponse::invalid(&InvalidField::new("id", Problem::Malformed { what: "UUID" })))
}
