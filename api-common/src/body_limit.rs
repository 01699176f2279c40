//! Request bodies above a size limit are refused with 413, whether or not
//! they announce their length. (poem's `SizeLimit` also refuses requests
//! without a `Content-Length`, which includes every plain GET.)

use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Request, Response};

fn too_large() -> poem::Error {
    poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Runs `next` on `request` if its body is at most `limit` bytes.
pub async fn limit_body<E: Endpoint>(next: E, mut request: Request, limit: usize) -> poem::Result<Response> {
    let announced = request
        .header(poem::http::header::CONTENT_LENGTH)
        .and_then(|length| length.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit as u64 => return Err(too_large()),
        Some(_) => {}
        None => {
            // A streamed body: read it, up to the limit.
            let body = request.take_body();
            let bytes = body.into_bytes_limit(limit).await.map_err(|_| too_large())?;
            request.set_body(Body::from_bytes(bytes));
        }
    }
    next.call(request).await.map(IntoResponse::into_response)
}
