//! Verifying access tokens with the public key alone.

use domain::account::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, Env};

/// Who issues access tokens (`iss`) when `JWT_ISSUER` is unset.
pub const DEFAULT_ISSUER: &str = "shop";
/// Whom access tokens are for (`aud`) when `JWT_AUDIENCE` is unset.
pub const DEFAULT_AUDIENCE: &str = "shop";

/// The issuer and audience of access tokens: the command API signs with
/// them, every verifier checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    pub issuer: String,
    pub audience: String,
}

impl Default for TokenScope {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
        }
    }
}

impl TokenScope {
    /// `JWT_ISSUER` and `JWT_AUDIENCE`, each defaulting on its own.
    pub fn from_env(env: &Env) -> Self {
        Self {
            issuer: env.get_or("JWT_ISSUER", DEFAULT_ISSUER).to_owned(),
            audience: env.get_or("JWT_AUDIENCE", DEFAULT_AUDIENCE).to_owned(),
        }
    }
}

/// Where a verifier's public key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// `JWT_PUBLIC_KEY` (PEM) or `JWT_PUBLIC_KEY_FILE`, one of which must be
    /// set: a service that verifies another process's tokens.
    FromEnv,
    /// The PEM of the command API running in this process (the
    /// one-process mode); the variables are not read, as no other key
    /// could verify that API's tokens.
    InProcess(&'a str),
}

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

    /// The verifier a service configures from `env`: the public key as
    /// `key` says, the issuer and audience from [`TokenScope::from_env`].
    /// What the query API and the projectors' admin API both read.
    pub fn from_env(env: &Env, key: PublicKey<'_>) -> Result<Self, ConfigError> {
        let (pem, variable) = match key {
            PublicKey::FromEnv => match env.value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE")? {
                Some(pem) => (pem, "JWT_PUBLIC_KEY"),
                None => return Err(ConfigError::missing("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE")),
            },
            PublicKey::InProcess(pem) => (pem.to_owned(), "the in-process command API's public key"),
        };
        let TokenScope { issuer, audience } = TokenScope::from_env(env);
        Self::from_pem(&pem, issuer, audience).map_err(|e| ConfigError::invalid(variable, e))
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    /// The Ed25519 key pair of RFC 8410, section 10.
    const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    fn token(issuer: &str, audience: &str) -> String {
        let now = unix_now();
        let claims = Claims {
            sub: Uuid::nil(),
            role: Role::Customer,
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + 60,
        };
        let key = EncodingKey::from_ed_pem(PRIVATE_KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    }

    fn unix_now() -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        i64::try_from(since_epoch.as_secs()).unwrap()
    }

    fn verifier(pairs: &[(&str, &str)], key: PublicKey<'_>) -> Result<Verifier, ConfigError> {
        Verifier::from_env(&Env::from_pairs(pairs.iter().copied()), key)
    }

    #[test]
    fn issuer_and_audience_default_to_shop_each_on_its_own() {
        assert_eq!(TokenScope::from_env(&Env::default()), TokenScope::default());
        assert_eq!(
            TokenScope::from_env(&Env::from_pairs([("JWT_AUDIENCE", "shoppers")])),
            TokenScope {
                issuer: "shop".to_owned(),
                audience: "shoppers".to_owned()
            }
        );
        assert_eq!(
            TokenScope::from_env(&Env::from_pairs([("JWT_ISSUER", "accounts")])).issuer,
            "accounts"
        );
    }

    #[test]
    fn the_public_key_from_the_environment_verifies_the_private_keys_tokens() {
        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv).unwrap();
        verifier.verify(&token("shop", "shop")).unwrap();
        assert!(verifier.verify(&token("shop", "elsewhere")).is_err());
    }

    #[test]
    fn the_public_key_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("api-common-public-key-{}", Uuid::new_v4()));
        std::fs::write(&path, PUBLIC_KEY).unwrap();
        let path_text = path.display().to_string();
        let verifier = verifier(&[("JWT_PUBLIC_KEY_FILE", &path_text)], PublicKey::FromEnv);
        std::fs::remove_file(&path).unwrap();
        verifier.unwrap().verify(&token("shop", "shop")).unwrap();
    }

    #[test]
    fn issuer_and_audience_from_the_environment_are_checked() {
        let pairs = [
            ("JWT_PUBLIC_KEY", PUBLIC_KEY),
            ("JWT_ISSUER", "accounts"),
            ("JWT_AUDIENCE", "shoppers"),
        ];
        let verifier = verifier(&pairs, PublicKey::FromEnv).unwrap();
        verifier.verify(&token("accounts", "shoppers")).unwrap();
        assert!(verifier.verify(&token("shop", "shop")).is_err());
    }

    #[test]
    fn a_missing_or_bad_public_key_is_named() {
        let error = verifier(&[], PublicKey::FromEnv).err().unwrap();
        assert_eq!(error.to_string(), "JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE must be set");
        let error = verifier(&[("JWT_PUBLIC_KEY", "not a key")], PublicKey::FromEnv)
            .err()
            .unwrap();
        assert_eq!(error.variable, "JWT_PUBLIC_KEY");
    }

    #[test]
    fn in_process_the_given_key_is_used_and_the_variables_are_not_read() {
        let pairs = [("JWT_PUBLIC_KEY", "not a key"), ("JWT_ISSUER", "accounts")];
        let verifier = verifier(&pairs, PublicKey::InProcess(PUBLIC_KEY)).unwrap();
        verifier.verify(&token("accounts", "shop")).unwrap();
    }
}
