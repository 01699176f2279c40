//! Access tokens: JWTs signed with Ed25519 (EdDSA, pinned), with subject,
//! role, issuer, audience, issue time, expiry and credential version, and
//! the signing key's thumbprint as `kid`. Verifying needs only the public
//! keys, which are published as a JWKS: the signing key's and the previous
//! keys kept through a rotation.

use std::sync::Arc;
use std::time::Duration;

use api_common::credentials::CredentialVersions;
use api_common::verification_key::VerificationKey;
use api_common::verifier::{TokenScope, Verifier};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
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

/// An Ed25519 signing key and its public half.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    public: VerificationKey,
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
        let public =
            VerificationKey::from_raw(pair.public_key().as_ref()).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            public,
        })
    }

    /// The public half, named by its thumbprint (the tokens' `kid`).
    pub fn public_key(&self) -> &VerificationKey {
        &self.public
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for
    /// configuring verifiers.
    pub fn public_key_pem(&self) -> String {
        self.public.pem()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token could not be signed: {0}")]
    Signing(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Issues access tokens with one key, and verifies them with it and with
/// the previous keys.
pub struct Tokens {
    key: SigningKey,
    previous: Vec<VerificationKey>,
    scope: TokenScope,
    lifetime: Duration,
    versions: Option<Arc<dyn CredentialVersions>>,
    verifier: Arc<Verifier>,
}

impl Tokens {
    /// Signing with `key` alone; see [`Tokens::with_previous_keys`] and
    /// [`Tokens::with_versions`].
    pub fn new(key: SigningKey, issuer: String, audience: String, lifetime: Duration) -> Self {
        let scope = TokenScope { issuer, audience };
        Self {
            verifier: Arc::new(Verifier::new(vec![key.public.clone()], scope.clone())),
            key,
            previous: Vec::new(),
            scope,
            lifetime,
            versions: None,
        }
    }

    /// Also verifying (and publishing) `previous`: keys that signed before
    /// a rotation, whose tokens have not all expired.
    #[must_use]
    pub fn with_previous_keys(mut self, previous: Vec<VerificationKey>) -> Self {
        self.previous = previous;
        self.rebuild_verifier()
    }

    /// Checking the credential version of each authenticated request with
    /// `versions`.
    #[must_use]
    pub fn with_versions(mut self, versions: Arc<dyn CredentialVersions>) -> Self {
        self.versions = Some(versions);
        self.rebuild_verifier()
    }

    fn rebuild_verifier(mut self) -> Self {
        let keys = std::iter::once(self.key.public.clone()).chain(self.previous.iter().cloned());
        let verifier = Verifier::new(keys.collect(), self.scope.clone());
        self.verifier = Arc::new(match &self.versions {
            Some(versions) => verifier.with_versions(Arc::clone(versions)),
            None => verifier,
        });
        self
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A token for `user_id` with `role`, whose account is at credential
    /// `version` (see [`api_common::credentials`]), with a fresh random id
    /// (`jti`) that a logout can revoke.
    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        version: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, TokenError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            iss: self.scope.issuer.clone(),
            aud: self.scope.audience.clone(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)),
            ver: version,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.public.id().to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verifier
            .verify(token)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// What verifies this issuer's tokens, for the bearer security scheme
    /// and the JWKS.
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
        let token = tokens.issue(user, Role::Admin, 1, chrono::Utc::now()).unwrap();
        let claims = tokens.verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        let again = tokens.verify(&tokens.issue(user, Role::Admin, 1, chrono::Utc::now()).unwrap());
        assert_ne!(claims.jti, again.unwrap().jti, "each token has its own id");
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn expired_foreign_tampered_and_other_audience_tokens_are_refused() {
        let mine = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "shop-api");
        let user = Uuid::new_v4();
        let expired = mine
            .issue(user, Role::Customer, 1, chrono::Utc::now() - chrono::Duration::hours(2))
            .unwrap();
        assert!(mine.verify(&expired).is_err(), "expired");
        let foreign = tokens(SigningKey::generate().unwrap(), "shop-api")
            .issue(user, Role::Customer, 1, chrono::Utc::now())
            .unwrap();
        assert!(mine.verify(&foreign).is_err(), "signed by another key");
        let good = mine.issue(user, Role::Customer, 1, chrono::Utc::now()).unwrap();
        let mut tampered = good.clone();
        tampered.insert(good.find('.').unwrap() + 2, 'x');
        assert!(mine.verify(&tampered).is_err(), "tampered");
        let elsewhere = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "elsewhere");
        let theirs = elsewhere.issue(user, Role::Customer, 1, chrono::Utc::now()).unwrap();
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
            ver: 1,
            jti: Uuid::new_v4(),
        };
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(mine.key.public_key().raw()),
        )
        .unwrap();
        assert!(mine.verify(&forged).is_err());
    }

    #[test]
    fn the_published_jwks_verifies_issued_tokens() {
        let mine = tokens(SigningKey::from_pem(RFC_8410_KEY).unwrap(), "shop-api");
        let token = mine
            .issue(Uuid::new_v4(), Role::Customer, 1, chrono::Utc::now())
            .unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(mine.verifier().jwks()).unwrap();
        let published = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["shop-api"]);
        assert!(jsonwebtoken::decode::<Claims>(&token, &published, &validation).is_ok());
        assert!(mine.key.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert!(SigningKey::from_pem(public).is_err());
        assert!(SigningKey::from_pem("garbage").is_err());
    }

    #[test]
    fn after_a_rotation_the_previous_keys_tokens_verify_until_it_is_dropped() {
        let old = tokens(SigningKey::generate().unwrap(), "shop-api");
        let user = Uuid::new_v4();
        let before = old.issue(user, Role::Customer, 1, chrono::Utc::now()).unwrap();
        let new_key = SigningKey::generate().unwrap();
        let rotated = tokens(new_key.clone(), "shop-api").with_previous_keys(vec![old.key.public_key().clone()]);
        let after = rotated.issue(user, Role::Customer, 1, chrono::Utc::now()).unwrap();
        let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        assert_eq!(kid(&after), new_key.public_key().id());
        assert_eq!(
            rotated.verify(&before).unwrap().sub,
            user,
            "the previous key still verifies"
        );
        rotated.verify(&after).unwrap();
        let published: Vec<_> = rotated.verifier().jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(published, [kid(&after), kid(&before)]);
        let dropped = tokens(new_key, "shop-api");
        assert!(dropped.verify(&before).is_err(), "a dropped key verifies nothing");
    }
}
