//! Verifying access tokens with public keys alone. Each token names the
//! key that signed it (`kid`, the key's RFC 7638 thumbprint, so signer and
//! verifiers agree without configuring names); a verifier holds every
//! active key, the current one and the previous ones kept through a
//! rotation, and refuses a token whose key it does not hold.

use std::sync::Arc;
use std::time::Duration;

use domain::account::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, Env};
use crate::credentials::{CredentialVersions, Outage};
use crate::verification_key::VerificationKey;
use crate::verified_tokens::VerifiedTokens;

/// The longest an access token may live: the command API refuses a longer
/// `JWT_TTL_SECONDS`, verifiers refuse a token whose `exp - iat` is longer.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How long past its `exp` a token is still accepted, for clocks that
/// disagree a little.
pub const LEEWAY_SECONDS: i64 = 30;

/// Whether a token expiring at `exp` has expired at `now` (both seconds
/// since the epoch), [`LEEWAY_SECONDS`] allowed: the rule `jsonwebtoken`
/// applies, for the tokens a verifier remembers ([`VerifiedTokens`]).
pub fn expired(exp: i64, now: i64) -> bool {
    exp < now.saturating_sub(LEEWAY_SECONDS)
}

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

/// Where a verifier's public keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// `JWT_PUBLIC_KEY` (PEM) or `JWT_PUBLIC_KEY_FILE`, one of which must be
    /// set, plus the optional `JWT_PREVIOUS_PUBLIC_KEYS` (PEMs) or
    /// `JWT_PREVIOUS_PUBLIC_KEYS_FILE`: a service that verifies another
    /// process's tokens.
    FromEnv,
    /// The PEMs of the command API running in this process (the
    /// one-process mode): its signing key's and its previous keys'; the
    /// variables are not read, as no other key could verify that API's
    /// tokens.
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
    /// The account's credential version when the token was issued (see
    /// [`crate::credentials`]).
    pub ver: u64,
    /// The token's own id, random: what a logout revokes. Tokens issued
    /// before it existed have none and are refused (log in again).
    pub jti: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the public key is not a PEM-encoded Ed25519 key: {0}")]
    Key(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token names no key this service holds")]
    UnknownKey,
    #[error("the token lives longer than the {} s maximum", MAX_TOKEN_LIFETIME.as_secs())]
    TooLong,
    #[error("the token predates its account's last credential change")]
    Superseded,
    #[error("the token was logged out")]
    Revoked,
    #[error("the account's credential version cannot be read: {cause}")]
    Unavailable { outage: Outage, cause: String },
    #[error("this service has no source of credential versions")]
    NoVersions,
}

/// `JWT_PREVIOUS_PUBLIC_KEYS` (PEMs) or the file
/// `JWT_PREVIOUS_PUBLIC_KEYS_FILE` names: keys that no longer sign but
/// still verify, through a rotation; none when unset.
pub fn previous_keys(env: &Env) -> Result<Vec<VerificationKey>, ConfigError> {
    let Some(pems) = env.value_or_file("JWT_PREVIOUS_PUBLIC_KEYS", "JWT_PREVIOUS_PUBLIC_KEYS_FILE")? else {
        return Ok(Vec::new());
    };
    VerificationKey::parse_pems(&pems).map_err(|e| ConfigError::invalid("JWT_PREVIOUS_PUBLIC_KEYS", e))
}

/// Checks EdDSA tokens (the algorithm is pinned): their key (`kid`), issuer,
/// audience, expiry and lifetime, and, through [`Verifier::authenticate`],
/// their credential version.
pub struct Verifier {
    keys: Vec<(VerificationKey, DecodingKey)>,
    issuer: String,
    audience: String,
    versions: Option<Arc<dyn CredentialVersions>>,
    /// The tokens this verifier has verified, so each is verified once.
    verified: VerifiedTokens,
}

impl Verifier {
    /// Verifying with `keys`, the current one first.
    pub fn new(keys: Vec<VerificationKey>, scope: TokenScope) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|key| {
                    let decoding = DecodingKey::from_ed_der(key.raw());
                    (key, decoding)
                })
                .collect(),
            issuer: scope.issuer,
            audience: scope.audience,
            versions: None,
            verified: VerifiedTokens::default(),
        }
    }

    /// The verifier a service configures from `env`: the public keys as
    /// `key` says, the issuer and audience from [`TokenScope::from_env`].
    /// What the query API and the projectors' admin API both read.
    pub fn from_env(env: &Env, key: PublicKey<'_>) -> Result<Self, ConfigError> {
        let keys = match key {
            PublicKey::FromEnv => {
                let Some(pem) = env.value_or_file("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE")? else {
                    return Err(ConfigError::missing("JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE"));
                };
                let mut keys =
                    VerificationKey::parse_pems(&pem).map_err(|e| ConfigError::invalid("JWT_PUBLIC_KEY", e))?;
                keys.extend(previous_keys(env)?);
                keys
            }
            PublicKey::InProcess(pem) => VerificationKey::parse_pems(pem)
                .map_err(|e| ConfigError::invalid("the in-process command API's public key", e))?,
        };
        Ok(Self::new(keys, TokenScope::from_env(env)))
    }

    /// From PEM `PUBLIC KEY`s, the current one first.
    pub fn from_pem(pem: &str, issuer: String, audience: String) -> Result<Self, VerifyError> {
        Ok(Self::new(
            VerificationKey::parse_pems(pem)?,
            TokenScope { issuer, audience },
        ))
    }

    /// Checks credential versions with `versions` from now on; without it,
    /// [`Verifier::authenticate`] refuses every token.
    #[must_use]
    pub fn with_versions(mut self, versions: Arc<dyn CredentialVersions>) -> Self {
        self.versions = Some(versions);
        self
    }

    /// Every key this verifier accepts, the current one first.
    pub fn keys(&self) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter().map(|(key, _)| key)
    }

    /// The keys as PEMs, one after the other: what [`PublicKey::InProcess`]
    /// takes.
    pub fn keys_pem(&self) -> String {
        self.keys().map(VerificationKey::pem).collect()
    }

    /// The JSON Web Key Set of every key this verifier accepts.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys().map(VerificationKey::jwk).collect::<Vec<_>>() })
    }

    /// The signature, key, issuer, audience, expiry and lifetime; not the
    /// credential version, which needs a lookup. A token verified before
    /// has its expiry checked again, and nothing else: the rest cannot
    /// change for the same bytes under the same keys.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if let Some(claims) = self.verified.get(token, unix_now()) {
            return Ok(claims);
        }
        let claims = self.verify_signed(token)?;
        self.verified.remember(token, &claims);
        Ok(claims)
    }

    /// [`Verifier::verify`] for a token not verified before.
    fn verify_signed(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(key, _)| key.id() == kid)
            .ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let max = i64::try_from(MAX_TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_sub(claims.iat) > max {
            return Err(VerifyError::TooLong);
        }
        Ok(claims)
    }

    /// [`Verifier::verify`], then the credential version and the token's
    /// revocation, looked up together: a token older than its account's
    /// last credential change (password, role, logout everywhere) is
    /// refused, so is a token logged out, and so is every token while
    /// either cannot be read.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify(token)?;
        let versions = self.versions.as_ref().ok_or(VerifyError::NoVersions)?;
        let (current, revoked) = futures::join!(versions.current(claims.sub), versions.revoked(claims.jti));
        let unavailable = |error: crate::credentials::LookupError| VerifyError::Unavailable {
            outage: versions.outage(),
            cause: error.to_string(),
        };
        if current
            .map_err(unavailable)?
            .is_some_and(|current| claims.ver < current)
        {
            return Err(VerifyError::Superseded);
        }
        if revoked.map_err(unavailable)? {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }
}

/// Seconds since the epoch, by the clock `jsonwebtoken` reads.
fn unix_now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    /// The Ed25519 key pair of RFC 8410, section 10.
    const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    /// A second pair, made with `openssl genpkey -algorithm ed25519`.
    const OTHER_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEICeNvrV7MMEDp/ch0gFpPUrLAxNrkoTQ6ezybkrCB+nN\n-----END PRIVATE KEY-----\n";
    const OTHER_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAyZZg30+Q8jzskUzF12hx+iUUpFbueaLNLyCSCMWzNIw=\n-----END PUBLIC KEY-----\n";

    fn kid(public_pem: &str) -> Option<String> {
        Some(VerificationKey::parse_pems(public_pem).unwrap()[0].id().to_owned())
    }

    fn claims(issuer: &str, audience: &str, lifetime: i64) -> Claims {
        let now = unix_now();
        Claims {
            sub: Uuid::nil(),
            role: Role::Customer,
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + lifetime,
            ver: 2,
            jti: Uuid::from_u128(42),
        }
    }

    fn signed(claims: &Claims, private_pem: &str, kid: Option<String>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid;
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn token(issuer: &str, audience: &str) -> String {
        signed(&claims(issuer, audience, 60), PRIVATE_KEY, kid(PUBLIC_KEY))
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

    #[test]
    fn a_token_without_a_kid_or_with_an_unknown_one_is_refused() {
        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv).unwrap();
        let claims = claims("shop", "shop", 60);
        let no_kid = signed(&claims, PRIVATE_KEY, None);
        assert!(matches!(verifier.verify(&no_kid), Err(VerifyError::UnknownKey)));
        let unknown = signed(&claims, PRIVATE_KEY, Some("someone-else".to_owned()));
        assert!(matches!(verifier.verify(&unknown), Err(VerifyError::UnknownKey)));
        let other_key_own_kid = signed(&claims, OTHER_PRIVATE_KEY, kid(OTHER_PUBLIC_KEY));
        assert!(matches!(
            verifier.verify(&other_key_own_kid),
            Err(VerifyError::UnknownKey)
        ));
        let other_key_our_kid = signed(&claims, OTHER_PRIVATE_KEY, kid(PUBLIC_KEY));
        assert!(matches!(
            verifier.verify(&other_key_our_kid),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn previous_keys_verify_beside_the_current_one_and_are_published() {
        let pairs = [
            ("JWT_PUBLIC_KEY", OTHER_PUBLIC_KEY),
            ("JWT_PREVIOUS_PUBLIC_KEYS", PUBLIC_KEY),
        ];
        let accepting = verifier(&pairs, PublicKey::FromEnv).unwrap();
        accepting.verify(&token("shop", "shop")).unwrap();
        let current = signed(&claims("shop", "shop", 60), OTHER_PRIVATE_KEY, kid(OTHER_PUBLIC_KEY));
        accepting.verify(&current).unwrap();
        let published: Vec<_> = accepting.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(published, [kid(OTHER_PUBLIC_KEY).unwrap(), kid(PUBLIC_KEY).unwrap()]);
        let error = verifier(
            &[("JWT_PUBLIC_KEY", PUBLIC_KEY), ("JWT_PREVIOUS_PUBLIC_KEYS", "x")],
            PublicKey::FromEnv,
        )
        .err()
        .unwrap();
        assert_eq!(error.variable, "JWT_PREVIOUS_PUBLIC_KEYS");
    }

    #[test]
    fn a_token_living_longer_than_the_maximum_is_refused() {
        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv).unwrap();
        let max = i64::try_from(MAX_TOKEN_LIFETIME.as_secs()).unwrap();
        let longest = signed(&claims("shop", "shop", max), PRIVATE_KEY, kid(PUBLIC_KEY));
        verifier.verify(&longest).unwrap();
        let longer = signed(&claims("shop", "shop", max + 1), PRIVATE_KEY, kid(PUBLIC_KEY));
        assert!(matches!(verifier.verify(&longer), Err(VerifyError::TooLong)));
    }

    #[tokio::test]
    async fn authenticate_refuses_an_older_version_and_any_token_without_a_source() {
        let verifier = || Verifier::from_pem(PUBLIC_KEY, "shop".to_owned(), "shop".to_owned()).unwrap();
        let token = token("shop", "shop");
        assert!(matches!(
            verifier().authenticate(&token).await,
            Err(VerifyError::NoVersions)
        ));
        let at = |version: Option<u64>, revoked: bool| -> Arc<dyn CredentialVersions> {
            Arc::new(crate::credentials::Sources {
                version: move |_| Box::pin(async move { Ok(version) }) as crate::credentials::Lookup<'static>,
                revoked: move |token| {
                    let revoked = revoked && token == Uuid::from_u128(42);
                    Box::pin(async move { Ok(revoked) }) as crate::credentials::Revocation<'static>
                },
            })
        };
        for (current, revoked, accepted) in [
            (None, false, true),
            (Some(1), false, true),
            (Some(2), false, true),
            (Some(3), false, false),
            (Some(2), true, false),
            (None, true, false),
        ] {
            let outcome = verifier()
                .with_versions(at(current, revoked))
                .authenticate(&token)
                .await;
            assert_eq!(
                outcome.is_ok(),
                accepted,
                "current version {current:?}, revoked {revoked}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_verified_token_is_remembered_and_its_expiry_checked_again_on_each_use() {
        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv).unwrap();
        let token = token("shop", "shop");
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verified.len(), 1);
        assert_eq!(verifier.verify(&token).unwrap(), first);
        assert_eq!(verifier.verified.len(), 1);

        // What a hit answers comes from what was remembered, with no
        // verification: bytes that could never verify are accepted once
        // remembered (only a verification remembers, in the service).
        let remembered = claims("shop", "shop", 60);
        verifier.verified.remember("not.a.jwt", &remembered);
        assert_eq!(verifier.verify("not.a.jwt").unwrap(), remembered);

        // A token remembered while it was valid, now past its expiry and
        // the leeway: refused, as a token never seen would be.
        let mut old = claims("shop", "shop", 60);
        old.iat -= 200;
        old.exp -= 200;
        let expired = signed(&old, PRIVATE_KEY, kid(PUBLIC_KEY));
        verifier.verified.remember(&expired, &old);
        assert!(
            matches!(verifier.verify(&expired), Err(VerifyError::Invalid(_))),
            "{:?}",
            verifier.verify(&expired)
        );
    }

    #[test]
    fn a_token_differing_in_one_byte_from_a_remembered_one_is_verified_in_full_and_refused() {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;

        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv).unwrap();
        let token = token("shop", "shop");
        verifier.verify(&token).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        let mut signature = parts[2].as_bytes().to_vec();
        signature[0] = if signature[0] == b'A' { b'B' } else { b'A' };
        let forged_signature = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(signature).unwrap());
        assert!(matches!(
            verifier.verify(&forged_signature),
            Err(VerifyError::Invalid(_))
        ));

        let mut raised = claims("shop", "shop", 60);
        raised.role = Role::Admin;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&raised).unwrap());
        let forged_claims = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert!(matches!(verifier.verify(&forged_claims), Err(VerifyError::Invalid(_))));
        assert_eq!(verifier.verified.len(), 1, "refused tokens are not remembered");
    }

    /// The credential version and the revocation are looked up on every
    /// request, a remembered token's too.
    #[tokio::test]
    async fn a_remembered_token_is_refused_once_its_account_changes_credentials() {
        use std::sync::atomic::{AtomicU64, Ordering};

        let current = Arc::new(AtomicU64::new(2));
        let versions = Arc::new(crate::credentials::Sources {
            version: {
                let current = Arc::clone(&current);
                move |_| {
                    let version = current.load(Ordering::SeqCst);
                    Box::pin(async move { Ok(Some(version)) }) as crate::credentials::Lookup<'static>
                }
            },
            revoked: |_| Box::pin(async { Ok(false) }) as crate::credentials::Revocation<'static>,
        });
        let verifier = verifier(&[("JWT_PUBLIC_KEY", PUBLIC_KEY)], PublicKey::FromEnv)
            .unwrap()
            .with_versions(versions);
        let token = token("shop", "shop");
        verifier.authenticate(&token).await.unwrap();
        assert_eq!(verifier.verified.len(), 1);
        current.store(3, Ordering::SeqCst);
        assert!(matches!(
            verifier.authenticate(&token).await,
            Err(VerifyError::Superseded)
        ));
    }
}
