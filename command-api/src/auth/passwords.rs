//! argon2id with the OWASP parameters, off the async threads and bounded.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as ParsedHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::account::{Password, PasswordHash};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::hash_queue::Queue;

/// OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// As many hashes as the queue holds are waiting: try again later.
    #[error("password hashing is at capacity: {0} hashes already wait")]
    Busy(usize),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and verifies passwords on the blocking pool, at most
/// `parallelism` at a time, with at most `queue` more waiting: past that a
/// caller is refused at once ([`HashingError::Busy`]), so a burst of logins
/// neither starves the server nor waits without end.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    queue: Arc<Queue>,
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
        .map_err(|e| HashingError::Failed(e.to_string()))
}

/// Verifies on the current thread; a malformed stored hash verifies nothing.
pub fn verify_blocking(password: &str, hash: &PasswordHash) -> bool {
    ParsedHash::new(hash.as_phc()).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

impl Passwords {
    /// One hash at a time per core, with at most `queue` waiting.
    pub fn new(queue: usize) -> Result<Self, HashingError> {
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_parallelism(parallelism, queue)
    }

    pub fn with_parallelism(parallelism: usize, queue: usize) -> Result<Self, HashingError> {
        let random =
            Password::parse(&uuid::Uuid::new_v4().to_string()).map_err(|e| HashingError::Failed(e.to_string()))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            queue: Arc::new(Queue::new(queue)),
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

    /// Runs `work` on the blocking pool once a slot is free. The slot goes
    /// with the work, so it stays taken until the hash is done even when
    /// the caller stops waiting (a client that went away).
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        let permit = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashingError::Failed(e.to_string()))
    }

    /// A free slot now, or one after waiting in the queue if it has room.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, HashingError> {
        let closed = |e: &dyn std::fmt::Display| HashingError::Failed(e.to_string());
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(closed(&"the hashing slots are closed")),
            Err(TryAcquireError::NoPermits) => {}
        }
        let _place = self.queue.join().inspect_err(|_| {
            metrics::counter!("auth_hash_queue_full_total").increment(1);
        })?;
        Arc::clone(&self.permits).acquire_owned().await.map_err(|e| closed(&e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let passwords = Passwords::new(4).unwrap();
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
        let passwords = Passwords::new(4).unwrap();
        assert!(!passwords.verify("anything at all".to_owned(), None).await.unwrap());
    }

    /// A job on the one slot that holds it until the test opens its gate,
    /// and says when it started.
    fn gated(
        passwords: &Passwords,
    ) -> (
        tokio::task::JoinHandle<()>,
        Arc<AtomicBool>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(AtomicBool::new(false));
        let passwords = passwords.clone();
        let flag = Arc::clone(&started);
        let job = tokio::spawn(async move {
            passwords
                .run(move || {
                    flag.store(true, Ordering::SeqCst);
                    let _ = gate.recv();
                })
                .await
                .unwrap();
        });
        (job, started, open)
    }

    /// Polls `condition` until it holds, for at most ten seconds.
    async fn until(condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "the condition never held");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_bound_a_hash_is_refused_at_once() {
        let passwords = Passwords::with_parallelism(1, 1).unwrap();
        let (_running, started, open_running) = gated(&passwords);
        until(|| started.load(Ordering::SeqCst)).await;
        let (waiting, waiting_started, open_waiting) = gated(&passwords);
        until(|| passwords.queue.waiting() == 1).await;
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            passwords.verify("x".to_owned(), None),
        )
        .await
        .expect("refused at once, not queued");
        assert!(matches!(refused, Err(HashingError::Busy(1))), "{refused:?}");
        open_running.send(()).unwrap();
        until(|| waiting_started.load(Ordering::SeqCst)).await;
        open_waiting.send(()).unwrap();
        waiting.await.unwrap();
        assert!(
            !passwords.verify("x".to_owned(), None).await.unwrap(),
            "the queue is free again"
        );
    }

    /// A caller that stops waiting (a client that went away) leaves its
    /// hash running, and the slot stays taken until that hash is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_caller_keeps_its_slot_until_its_hash_is_done() {
        let passwords = Passwords::with_parallelism(1, 4).unwrap();
        let (abandoned, started, open_abandoned) = gated(&passwords);
        until(|| started.load(Ordering::SeqCst)).await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        let (next, next_started, open_next) = gated(&passwords);
        until(|| next_started.load(Ordering::SeqCst) || passwords.queue.waiting() == 1).await;
        assert!(
            !next_started.load(Ordering::SeqCst),
            "the next hash started while the abandoned one still ran"
        );
        open_abandoned.send(()).unwrap();
        until(|| next_started.load(Ordering::SeqCst)).await;
        open_next.send(()).unwrap();
        next.await.unwrap();
    }

    #[test]
    fn a_malformed_stored_hash_verifies_nothing() {
        assert!(!verify_blocking("x", &PasswordHash::from_phc("not a hash".to_owned())));
    }
}
