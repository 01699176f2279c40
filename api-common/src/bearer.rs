//! The bearer token security scheme of the API.

use std::sync::Arc;

use domain::account::Role;
use domain::ids::UserId;
use poem::{IntoResponse as _, Request};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use poem_openapi::error::AuthorizationError;

use crate::problem::ProblemResponse;
use crate::verifier::{Claims, Verifier, VerifyError};

/// A JWT access token from `POST /auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "verify")]
pub struct BearerAuth(pub Claims);

/// Any refusal (bad signature, unknown key, too long a life, superseded
/// credentials, a token logged out) is the same 401: the reason is logged, not told. A
/// credential version that cannot be read is a 503 with `Retry-After`: the
/// token may be fine, so the client should retry, not log in again.
async fn verify(request: &Request, bearer: Bearer) -> poem::Result<Claims> {
    let Some(verifier) = request.data::<Arc<Verifier>>() else {
        return Err(answer(ProblemResponse::internal("no verifier in the request's data")));
    };
    match verifier.authenticate(&bearer.token).await {
        Ok(claims) => Ok(claims),
        Err(VerifyError::Unavailable { outage, cause }) => {
            tracing::warn!(%cause, "credential version unavailable");
            Err(answer(ProblemResponse::unavailable(outage.kind, outage.detail, 1)))
        }
        Err(error @ VerifyError::NoVersions) => Err(answer(ProblemResponse::internal(error))),
        Err(error) => {
            tracing::debug!(%error, "bearer token refused");
            Err(AuthorizationError.into())
        }
    }
}

/// `problem` as the error a checker returns, kept as it is by the
/// problem+json catcher.
fn answer(problem: ProblemResponse) -> poem::Error {
    poem::Error::from_response(problem.into_response())
}

impl BearerAuth {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.0.sub)
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
}
