//! argon2id with the OWASP parameters, off the async threads and bounded.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as ParsedHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::account::{Password, PasswordHash};
use tokio::sync::Semaphore;

/// OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

/// Hashes and verifies passwords on the blocking pool, at most one per core
/// at a time, so a burst of logins queues instead of starving the server.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown users are verified against
    /// it, so "no such user" costs what "wrong password" costs.
    dummy: Arc<PasswordHash>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("the OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on the current thread; callers run it on the blocking pool.
pub fn hash_blocking(password: &Password) -> Result<PasswordHash, HashingError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| PasswordHash::from_phc(hash.to_string()))
        .map_err(|e| HashingError(e.to_string()))
}

/// Verifies on the current thread; a malformed stored hash verifies nothing.
pub fn verify_blocking(password: &str, hash: &PasswordHash) -> bool {
    ParsedHash::new(hash.as_phc()).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

impl Passwords {
    pub fn new() -> Result<Self, HashingError> {
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let random = Password::parse(&uuid::Uuid::new_v4().to_string()).map_err(|e| HashingError(e.to_string()))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(parallelism)),
            dummy: Arc::new(hash_blocking(&random)?),
        })
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `hash`, or against the dummy hash when
    /// there is no user, so both answers take the same time.
    pub async fn verify(&self, password: String, hash: Option<PasswordHash>) -> Result<bool, HashingError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| (*self.dummy).clone());
        let matches = self.run(move || verify_blocking(&password, &hash)).await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        let _permit = self.permits.acquire().await.map_err(|e| HashingError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashingError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let passwords = Passwords::new().unwrap();
        let hash = passwords.hash(Password::parse("correct horse").unwrap()).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify("correct horse".to_owned(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse".to_owned(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::new().unwrap();
        assert!(!passwords.verify("anything at all".to_owned(), None).await.unwrap());
    }

    #[test]
    fn a_malformed_stored_hash_verifies_nothing() {
        assert!(!verify_blocking("x", &PasswordHash::from_phc("not a hash".to_owned())));
    }
}
