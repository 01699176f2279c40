//! The bearer token security scheme of the API.

use std::sync::Arc;

use domain::account::Role;
use domain::ids::UserId;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::verifier::{Claims, Verifier};

/// A JWT access token from `POST /auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "verify")]
pub struct BearerAuth(pub Claims);

/// Any refusal (bad signature, unknown key, superseded credentials, a
/// version that cannot be read) is the same 401: the reason is logged, not
/// told.
async fn verify(request: &Request, bearer: Bearer) -> Option<Claims> {
    let verifier = request.data::<Arc<Verifier>>()?;
    match verifier.authenticate(&bearer.token).await {
        Ok(claims) => Some(claims),
        Err(error) => {
            tracing::debug!(%error, "bearer token refused");
            None
        }
    }
}

impl BearerAuth {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.0.sub)
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
}
