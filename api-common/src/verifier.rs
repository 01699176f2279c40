//! Verifying access tokens with the public key alone.

use domain::account::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the public key is not a PEM-encoded Ed25519 key: {0}")]
    Key(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Checks EdDSA tokens (the algorithm is pinned), their issuer, audience
/// and expiry.
pub struct Verifier {
    key: DecodingKey,
    issuer: String,
    audience: String,
}

impl Verifier {
    /// From the raw 32-byte Ed25519 public key.
    pub fn from_raw_key(public_key: &[u8], issuer: String, audience: String) -> Self {
        Self {
            key: DecodingKey::from_ed_der(public_key),
            issuer,
            audience,
        }
    }

    /// From `JWT_PUBLIC_KEY` (PEM) or `JWT_PUBLIC_KEY_FILE`, with
    /// `JWT_ISSUER` and `JWT_AUDIENCE` (default `shop` both); the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let pem = match (var("JWT_PUBLIC_KEY"), var("JWT_PUBLIC_KEY_FILE")) {
            (Some(pem), _) => pem,
            (None, Some(path)) => {
                std::fs::read_to_string(&path).map_err(|e| format!("JWT_PUBLIC_KEY_FILE is not valid: {path}: {e}"))?
            }
            (None, None) => return Err("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set".to_owned()),
        };
        let issuer = var("JWT_ISSUER").unwrap_or_else(|| "shop".to_owned());
        let audience = var("JWT_AUDIENCE").unwrap_or_else(|| "shop".to_owned());
        Self::from_pem(&pem, issuer, audience).map_err(|e| format!("JWT_PUBLIC_KEY: {e}"))
    }

    /// From a PEM `PUBLIC KEY`.
    pub fn from_pem(pem: &str, issuer: String, audience: String) -> Result<Self, VerifyError> {
        let key = DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| VerifyError::Key(e.to_string()))?;
        Ok(Self { key, issuer, audience })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &self.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}
