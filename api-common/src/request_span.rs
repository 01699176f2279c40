//! Every request of every service runs in a `request` span with its request
//! id and, when the caller sent a valid `traceparent`, its trace id, so
//! each line logged while it is served names them (in JSON logs under
//! `spans`). The command API records the same two ids in the events the
//! request causes (their correlation id and trace id), and the saga and the
//! projectors log them again when they handle those events: one order can
//! be followed from its request to its views.

use std::time::Instant;

use domain::trace_id::TraceId;
use poem::http::HeaderMap;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;
use uuid::Uuid;

use crate::trace_context::{self, TRACEPARENT};

/// The header a caller names its request with.
pub const REQUEST_ID: &str = "x-request-id";

/// What ties a request to the logs and to the events it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    /// The correlation id of the events the request causes; see
    /// [`request_id`].
    pub request_id: Uuid,
    /// The caller's trace, from a valid `traceparent` (sent once).
    pub trace_id: Option<TraceId>,
}

impl RequestIds {
    /// From `X-Request-Id` and `traceparent`; a `traceparent` sent more
    /// than once is not valid.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut traceparents = headers.get_all(TRACEPARENT).iter();
        let trace_id = match (traceparents.next(), traceparents.next()) {
            (Some(value), None) => value.to_str().ok().and_then(trace_context::trace_id),
            _ => None,
        };
        Self {
            request_id: request_id(headers.get(REQUEST_ID).and_then(|value| value.to_str().ok())),
            trace_id,
        }
    }

    /// The ids [`in_span`] gave `request` and logs it with; read from its
    /// headers where it did not run.
    pub fn of(request: &Request) -> Self {
        request
            .extensions()
            .get::<Self>()
            .copied()
            .unwrap_or_else(|| Self::from_headers(request.headers()))
    }
}

/// The request id an `X-Request-Id` value gives: itself when it is a UUID,
/// else the UUIDv5 of its text (so a retry with the same text gets the same
/// id), and a fresh UUIDv7 when there is none.
pub fn request_id(header: Option<&str>) -> Uuid {
    header
        .filter(|id| !id.is_empty())
        .map(|id| Uuid::parse_str(id).unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes())))
        .unwrap_or_else(Uuid::now_v7)
}

/// Serves `request` inside its `request` span, with its [`RequestIds`] in
/// its extensions for the operations, and logs each answer (at debug: the
/// status and how long it took). The span is at info, the default level.
pub async fn in_span<E: Endpoint>(next: E, mut request: Request) -> poem::Result<Response> {
    let ids = RequestIds::from_headers(request.headers());
    request.extensions_mut().insert(ids);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id = %ids.request_id,
        trace_id = ids.trace_id.map(tracing::field::display),
    );
    async move {
        let started = Instant::now();
        let outcome = next.call(request).await.map(IntoResponse::into_response);
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(status = status.as_u16(), elapsed_ms, "answered");
        outcome
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_uuid_request_id_is_kept_and_other_text_maps_to_one() {
        let uuid = "019abf00-0000-7000-8000-000000000001";
        assert_eq!(request_id(Some(uuid)).to_string(), uuid);
        assert_eq!(request_id(Some("retry-7")), request_id(Some("retry-7")));
        assert_ne!(request_id(Some("retry-7")), request_id(Some("retry-8")));
        assert_ne!(request_id(None), request_id(Some("")));
    }

    #[test]
    fn the_trace_id_comes_from_one_valid_traceparent() {
        let one = RequestIds::from_headers(&headers(&[(TRACEPARENT, TRACEPARENT_VALUE)]));
        assert_eq!(
            one.trace_id.map(|id| id.to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let twice = headers(&[(TRACEPARENT, TRACEPARENT_VALUE), (TRACEPARENT, TRACEPARENT_VALUE)]);
        assert_eq!(RequestIds::from_headers(&twice).trace_id, None);
        let invalid = headers(&[(TRACEPARENT, "00-not-a-trace")]);
        assert_eq!(RequestIds::from_headers(&invalid).trace_id, None);
        assert_eq!(RequestIds::from_headers(&HeaderMap::new()).trace_id, None);
    }
}
