//! Errors as RFC 9457 problem details (`application/problem+json`), both
//! for the operations' own refusals and for everything poem rejects before
//! an operation runs (malformed JSON, wrong content type, oversized bodies,
//! missing tokens, unknown routes).

use domain::validation::InvalidField;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// A problem detail.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A URI reference that names the kind of problem.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request field at fault, as a path such as `items[2].quantity`.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

/// Every error answer of the API.
#[derive(ApiResponse, Debug)]
pub enum ProblemResponse {
    /// The request is malformed, or a field is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user may not do this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource, or not one of yours.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request is well-formed but cannot be honoured as it stands.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Something failed on our side; nothing was changed by this request
    /// unless a retry says otherwise.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// Not ready yet (or a dependency is unavailable): retry after the
    /// number of seconds in `Retry-After`.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] Option<u32>),
}

fn problem(status: StatusCode, kind: &str, detail: impl Into<String>, field: Option<String>) -> Json<Problem> {
    Json(Problem {
        kind: format!("/problems/{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        field,
    })
}

impl ProblemResponse {
    /// 400 `invalid-field`, or 422 `invalid-combination` when the rule broken
    /// is one across fields (the request matched its schema).
    pub fn invalid(error: &InvalidField) -> Self {
        if error.problem.is_cross_field() {
            return Self::unprocessable("invalid-combination", error.to_string(), Some(&error.field));
        }
        Self::BadRequest(problem(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            error.to_string(),
            Some(error.field.clone()),
        ))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized(problem(StatusCode::UNAUTHORIZED, "unauthorized", detail, None))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(problem(StatusCode::FORBIDDEN, "forbidden", detail, None))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(problem(StatusCode::NOT_FOUND, "not-found", detail, None))
    }

    pub fn conflict(kind: &str, detail: impl Into<String>) -> Self {
        Self::Conflict(problem(StatusCode::CONFLICT, kind, detail, None))
    }

    pub fn unprocessable(kind: &str, detail: impl Into<String>, field: Option<&str>) -> Self {
        Self::Unprocessable(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            detail,
            field.map(str::to_owned),
        ))
    }

    /// Not ready: retry after `seconds`.
    pub fn unavailable(kind: &str, detail: impl Into<String>, seconds: u32) -> Self {
        Self::Unavailable(
            problem(StatusCode::SERVICE_UNAVAILABLE, kind, detail, None),
            Some(seconds),
        )
    }

    /// Logs `error` with its whole chain of causes and answers without
    /// revealing any of it.
    pub fn internal_from(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::internal(ErrorChain(error))
    }

    /// Logs the cause and answers without revealing it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::Internal(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed on our side",
            None,
        ))
    }
}

/// `From<ProblemResponse>` for one operation's response enum, whose
/// variants (named as [`ProblemResponse`]'s, plus `Internal`) are the
/// statuses that operation documents. A problem it does not document is a
/// bug: logged, and answered as its 500. With `; Unavailable` the enum has
/// `Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32)`.
#[macro_export]
macro_rules! problem_answers {
    ($answer:ty: $($variant:ident),* $(; $unavailable:ident)?) => {
        impl From<$crate::problem::ProblemResponse> for $answer {
            #[allow(unreachable_patterns)]
            fn from(problem: $crate::problem::ProblemResponse) -> Self {
                use $crate::problem::ProblemResponse as P;
                match problem {
                    $(P::$variant(body) => Self::$variant(body),)*
                    $(P::Unavailable(body, retry) => Self::$unavailable(body, retry.unwrap_or(1)),)?
                    P::Internal(body) => Self::Internal(body),
                    other => Self::from(P::internal(format_args!(
                        "{} does not document {other:?}",
                        stringify!($answer)
                    ))),
                }
            }
        }
    };
}

/// An error followed by each of its sources, `: `-separated: what a log
/// needs to find the cause, which an error's own message often leaves out.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Turns whatever poem rejected before (or instead of) an operation into a
/// problem detail with the same status.
pub fn from_poem_error(error: poem::Error) -> Response {
    // The operations' own problem answers travel as errors too: keep them.
    if error.is_from_response() {
        return error.into_response();
    }
    let status = error.status();
    if let Some(invalid) = error.downcast_ref::<crate::json_body::InvalidBody>() {
        let body = problem(
            status,
            "invalid-field",
            invalid.to_string(),
            Some(invalid.field.clone()),
        );
        return problem_response(status, body);
    }
    let (kind, detail, field) = match status {
        StatusCode::BAD_REQUEST => {
            let detail = error.to_string();
            let field = field_of(&detail);
            ("malformed-request", detail, field)
        }
        StatusCode::UNAUTHORIZED => ("unauthorized", "a valid bearer token is required".to_owned(), None),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "the request body is too large".to_owned(), None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", error.to_string(), None),
        StatusCode::NOT_FOUND => ("not-found", "no such resource".to_owned(), None),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", error.to_string(), None),
        status if status.is_server_error() => {
            tracing::error!(%error, "request failed");
            ("internal", "the request failed on our side".to_owned(), None)
        }
        _ => ("error", error.to_string(), None),
    };
    problem_response(status, problem(status, kind, detail, field))
}

fn problem_response(status: StatusCode, body: Json<Problem>) -> Response {
    let mut response = body.into_response();
    response.set_status(status);
    response.headers_mut().insert(
        poem::http::header::CONTENT_TYPE,
        "application/problem+json".parse().expect("static"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(poem::http::header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was refused unread, so the connection cannot carry
        // another request: say so, or a client writes its next request
        // into a connection the server is closing.
        response
            .headers_mut()
            .insert(poem::http::header::CONNECTION, "close".parse().expect("static"));
    }
    response
}

/// The field a poem-openapi parse error names, as in
/// `failed to parse "Login": field `username`: ...` or
/// `failed to parse path `id``.
fn field_of(detail: &str) -> Option<String> {
    for marker in ["field `", "parameter `", "path `"] {
        if let Some(start) = detail.find(marker) {
            let rest = &detail[start + marker.len()..];
            return rest.find('`').map(|end| rest[..end].to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(ErrorChain(&error).to_string(), "outer: inner");
    }

    #[test]
    fn finds_the_field_in_parse_errors() {
        assert_eq!(
            field_of("parse request payload error: failed to parse \"Login\": field `username`: expected string"),
            Some("username".to_owned())
        );
        assert_eq!(field_of("failed to parse path `id`: invalid"), Some("id".to_owned()));
        assert_eq!(field_of("expected value at line 1 column 1"), None);
    }
}
