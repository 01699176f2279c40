//! Access tokens: JWTs signed with Ed25519 (EdDSA, pinned), with subject,
//! role, issuer, audience, issue time and expiry. Verifying needs only the
//! public key, which is published as a JWKS.

use std::sync::Arc;
use std::time::Duration;

use api_common::verifier::Verifier;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::account::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not a PEM-encoded PKCS#8 Ed25519 key: {0}")]
    Malformed(String),
    #[error("key generation failed: {0}")]
    Generation(String),
}

pub use api_common::verifier::Claims;

/// An Ed25519 signing key and what verifiers need to know of it.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    public_key: Vec<u8>,
    key_id: String,
}

impl SigningKey {
    /// A fresh key pair: only for the local one-process mode, where nothing
    /// else needs to verify the tokens after a restart.
    pub fn generate() -> Result<Self, KeyError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|e| KeyError::Generation(e.to_string()))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    /// From a PEM `PRIVATE KEY` (PKCS#8), as `openssl genpkey -algorithm ed25519` writes it.
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        let block = pem::parse(pem_text).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(KeyError::Malformed(format!("found a {:?} block", block.tag())));
        }
        Self::from_pkcs8_der(block.contents())
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let public_key = pair.public_key().as_ref().to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public_key);
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            key_id: URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]),
            public_key,
        })
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for
    /// configuring verifiers.
    pub fn public_key_pem(&self) -> String {
        // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix
        // (RFC 8410) followed by the 32-byte key.
        const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public_key);
        pem::encode(&pem::Pem::new("PUBLIC KEY", der))
    }

    /// The JSON Web Key Set publishing the public key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(&self.public_key),
                "kid": self.key_id,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token could not be signed: {0}")]
    Signing(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Issues and verifies access tokens.
pub struct Tokens {
    key: SigningKey,
    verifier: Arc<Verifier>,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl Tokens {
    pub fn new(key: SigningKey, issuer: String, audience: String, lifetime: Duration) -> Self {
        Self {
            verifier: Arc::new(Verifier::from_raw_key(
                &key.public_key,
                issuer.clone(),
                audience.clone(),
            )),
            key,
            issuer,
            audience,
            lifetime,
        }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue(&self, user_id: Uuid, role: Role, now: chrono::DateTime<chrono::Utc>) -> Result<String, TokenError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat + self.lifetime.as_secs() as i64,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.key.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verifier
            .verify(token)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// What verifies this issuer's tokens, for the bearer security scheme.
    pub fn verifier(&self) -> Arc<Verifier> {
        Arc::clone(&self.verifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example Ed25519 private key of RFC 8410, section 10.3.
    const RFC_8410_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

    fn tokens(key: SigningKey, audience: &str) -> Tokens {
        Tokens::new(key, "shop".to_owned(), audience.to_owned(), Duration::from_secs(3600))
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let tokens = tokens(SigningKey::generate().unwrap(), "shop-api");
        let user = Uuid::new_v4();
        let token = tokens.issue(user, Role::Admin, chrono::Utc::now()).unwrap();
        let claims = tokens.verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn expired_foreign_tampered_and_other_audience_tokens_are_refused() {
        let mine = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "shop-api");
        let user = Uuid::new_v4();
        let expired = mine
            .issue(user, Role::Customer, chrono::Utc::now() - chrono::Duration::hours(2))
            .unwrap();
        assert!(mine.verify(&expired).is_err(), "expired");
        let foreign = tokens(SigningKey::generate().unwrap(), "shop-api")
            .issue(user, Role::Customer, chrono::Utc::now())
            .unwrap();
        assert!(mine.verify(&foreign).is_err(), "signed by another key");
        let good = mine.issue(user, Role::Customer, chrono::Utc::now()).unwrap();
        let mut tampered = good.clone();
        tampered.insert(good.find('.').unwrap() + 2, 'x');
        assert!(mine.verify(&tampered).is_err(), "tampered");
        let elsewhere = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "elsewhere");
        let theirs = elsewhere.issue(user, Role::Customer, chrono::Utc::now()).unwrap();
        assert!(mine.verify(&theirs).is_err(), "other audience");
        assert!(mine.verify("not.a.jwt").is_err());
    }

    #[test]
    fn an_hs256_token_is_refused_even_with_the_public_key_as_secret() {
        let mine = tokens(SigningKey::generate().unwrap(), "shop-api");
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::new_v4(),
            role: Role::Admin,
            iss: "shop".to_owned(),
            aud: "shop-api".to_owned(),
            iat: now,
            exp: now + 60,
        };
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&mine.key().public_key),
        )
        .unwrap();
        assert!(mine.verify(&forged).is_err());
    }

    #[test]
    fn the_published_jwks_verifies_issued_tokens() {
        let mine = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "shop-api");
        let token = mine.issue(Uuid::new_v4(), Role::Customer, chrono::Utc::now()).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(mine.key().jwks()).unwrap();
        let published = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["shop-api"]);
        assert!(jsonwebtoken::decode::<Claims>(&token, &published, &validation).is_ok());
        assert!(mine.key().public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert!(SigningKey::from_pem(public).is_err());
        assert!(SigningKey::from_pem("garbage").is_err());
    }
}
