//! Tokens whose signature a verifier has already checked, so that a client
//! sending the same token with each request pays for the Ed25519
//! verification once rather than every time. It was 8.8% of the command
//! API's time under `POST /orders` (`perf`, 16 clients), about 50 µs per
//! request.
//!
//! What is kept is what the signature proved, the claims, under the
//! SHA-256 of the token's exact bytes: a token that differs in any byte
//! (another signature, an edited claim) is not found and is verified in
//! full. The expiry is checked again on every use, and the credential
//! version and revocation lookups of
//! [`crate::verifier::Verifier::authenticate`] still run on every request.
//! Only tokens that verified are kept, and at most `capacity` of them: the
//! least recently used goes first.

use std::collections::hash_map::RandomState;
use std::sync::Mutex;

use hashlink::LruCache;
use sha2::{Digest, Sha256};

use crate::verifier::{Claims, expired};

/// How many tokens a verifier remembers at most: a few hundred bytes each.
pub const VERIFIED_TOKENS_CAPACITY: usize = 10_000;

pub struct VerifiedTokens {
    /// Claims by the SHA-256 of the token; least recently used first.
    tokens: Mutex<LruCache<[u8; 32], Claims, RandomState>>,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::with_capacity(VERIFIED_TOKENS_CAPACITY)
    }
}

impl VerifiedTokens {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            tokens: Mutex::new(LruCache::with_hasher(capacity.max(1), RandomState::new())),
        }
    }

    /// The claims of `token` if it verified before and has not expired at
    /// `now` (seconds since the epoch); an expired one is forgotten.
    pub fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let key = digest(token);
        let mut tokens = self.lock();
        let claims = tokens.get(&key)?;
        if expired(claims.exp, now) {
            tokens.remove(&key);
            return None;
        }
        Some(claims.clone())
    }

    /// Remembers that `token`, whose signature was checked, carries `claims`.
    pub fn remember(&self, token: &str, claims: &Claims) {
        self.lock().insert(digest(token), claims.clone());
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Claims, RandomState>> {
        // The table is consistent after every statement; a panic elsewhere
        // while it was locked leaves nothing half done.
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use domain::account::Role;
    use uuid::Uuid;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            role: Role::Customer,
            iss: "shop".to_owned(),
            aud: "shop".to_owned(),
            iat: exp - 900,
            exp,
            ver: 1,
            jti: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_remembered_token_is_found_by_its_exact_bytes_only() {
        let tokens = VerifiedTokens::default();
        let remembered = claims(NOW + 60);
        tokens.remember("header.payload.signature", &remembered);
        assert_eq!(tokens.get("header.payload.signature", NOW), Some(remembered));
        assert_eq!(tokens.get("header.payload.signaturf", NOW), None);
        assert_eq!(tokens.get("header.payload.signature ", NOW), None);
        assert_eq!(tokens.get("header.payload", NOW), None);
    }

    #[test]
    fn an_expired_token_is_not_found_and_is_forgotten() {
        let tokens = VerifiedTokens::default();
        let remembered = claims(NOW);
        tokens.remember("a.b.c", &remembered);
        let leeway = crate::verifier::LEEWAY_SECONDS;
        assert_eq!(tokens.get("a.b.c", NOW + leeway), Some(remembered), "within the leeway");
        assert_eq!(tokens.get("a.b.c", NOW + leeway + 1), None, "past the leeway");
        assert_eq!(tokens.len(), 0, "forgotten");
    }

    #[test]
    fn the_least_recently_used_token_goes_first_when_full() {
        let tokens = VerifiedTokens::with_capacity(3);
        for token in ["1.1.1", "2.2.2", "3.3.3"] {
            tokens.remember(token, &claims(NOW + 60));
        }
        assert!(tokens.get("1.1.1", NOW).is_some(), "used again: now the most recent");
        tokens.remember("4.4.4", &claims(NOW + 60));
        assert_eq!(tokens.len(), 3);
        assert!(tokens.get("2.2.2", NOW).is_none(), "the least recently used went");
        for kept in ["1.1.1", "3.3.3", "4.4.4"] {
            assert!(tokens.get(kept, NOW).is_some(), "{kept} kept");
        }
    }
}
