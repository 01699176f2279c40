use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};

use crate::auth::tokens::Tokens;

#[derive(Tags)]
enum Tag {
    /// Keys that verify access tokens.
    Keys,
}

pub struct KeysApi;

#[OpenApi]
impl KeysApi {
    /// The public keys that verify access tokens (JWKS, RFC 7517).
    ///
    /// The signing key's, then the previous keys' kept through a rotation,
    /// each named (`kid`) by its RFC 7638 thumbprint, which tokens carry.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "getJwks",
        tag = "Tag::Keys"
    )]
    async fn jwks(&self, tokens: Data<&Arc<Tokens>>) -> Json<serde_json::Value> {
        Json(tokens.verifier().jwks())
    }
}
