//! Credential versions: how verifiers learn that a token was issued before
//! its user's password or role last changed.
//!
//! A token carries `ver`, the number of events in its account's stream when
//! it was issued (every account event, registration, password change, role
//! change, changes a credential). A verifier refuses it once the account's
//! current version is greater. The command API asks its event store; the
//! query API and the projectors' admin API ask the `users` view through
//! [`Cached`], so a refusal comes at most one projection lag plus
//! [`VERSION_CACHE_TTL`] after the change.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use uuid::Uuid;

/// Why a version could not be read; the token is refused.
pub type LookupError = Box<dyn std::error::Error + Send + Sync>;

/// What a lookup answers: the account's current version, `None` when the
/// source does not know the account (yet).
pub type Lookup<'a> = BoxFuture<'a, Result<Option<u64>, LookupError>>;

/// What a request is answered (503 problem+json, `Retry-After: 1`) when a
/// source cannot be read: the problem's kind and detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub kind: &'static str,
    pub detail: &'static str,
}

/// Where a verifier reads an account's current credential version.
pub trait CredentialVersions: Send + Sync {
    fn current(&self, user: Uuid) -> Lookup<'_>;

    /// How an unreadable version is answered: the client should retry, not
    /// log in again.
    fn outage(&self) -> Outage {
        Outage {
            kind: "credentials-unavailable",
            detail: "the account's credentials cannot be checked now; retry",
        }
    }
}

/// Any `Fn(user) -> future` is a source, e.g. a query of the views.
impl<F> CredentialVersions for F
where
    F: Fn(Uuid) -> Lookup<'static> + Send + Sync,
{
    fn current(&self, user: Uuid) -> Lookup<'_> {
        self(user)
    }
}

/// How long a version read from the views is trusted: part of the delay
/// before a changed password or role refuses older tokens.
pub const VERSION_CACHE_TTL: Duration = Duration::from_secs(5);

/// How many users' versions are cached at most, so memory stays bounded
/// whatever tokens arrive.
pub const VERSION_CACHE_CAPACITY: usize = 10_000;

/// A source's answers remembered for a while, so each request does not cost
/// a query; errors are not remembered.
pub struct Cached<S> {
    source: S,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Uuid, (Instant, Option<u64>)>>,
}

impl<S: CredentialVersions> Cached<S> {
    /// With [`VERSION_CACHE_TTL`] and [`VERSION_CACHE_CAPACITY`].
    pub fn new(source: S) -> Self {
        Self::with_limits(source, VERSION_CACHE_TTL, VERSION_CACHE_CAPACITY)
    }

    pub fn with_limits(source: S, ttl: Duration, capacity: usize) -> Self {
        Self {
            source,
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, user: Uuid) -> Option<Option<u64>> {
        let entries = self.lock();
        let (read_at, version) = entries.get(&user)?;
        (read_at.elapsed() < self.ttl).then_some(*version)
    }

    /// Remembers `version`; when full, forgets the expired entries first,
    /// and everything if none had expired.
    fn remember(&self, user: Uuid, version: Option<u64>) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&user) {
            entries.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(user, (Instant::now(), version));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Option<u64>)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<S: CredentialVersions> CredentialVersions for Cached<S> {
    fn current(&self, user: Uuid) -> Lookup<'_> {
        Box::pin(async move {
            if let Some(version) = self.fresh(user) {
                return Ok(version);
            }
            let version = self.source.current(user).await?;
            self.remember(user, version);
            Ok(version)
        })
    }

    fn outage(&self) -> Outage {
        self.source.outage()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A source answering its counter, counting the reads.
    fn counting(version: Arc<AtomicU64>, reads: Arc<AtomicU64>) -> impl CredentialVersions {
        move |_user| {
            reads.fetch_add(1, Ordering::SeqCst);
            let version = version.load(Ordering::SeqCst);
            Box::pin(async move { Ok(Some(version)) }) as Lookup<'static>
        }
    }

    #[tokio::test]
    async fn an_answer_is_reused_until_its_ttl_ends() {
        let (version, reads) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(0)));
        let ttl = Duration::from_millis(200);
        let cached = Cached::with_limits(counting(Arc::clone(&version), Arc::clone(&reads)), ttl, 10);
        let user = Uuid::new_v4();
        assert_eq!(cached.current(user).await.unwrap(), Some(1));
        version.store(2, Ordering::SeqCst);
        assert_eq!(cached.current(user).await.unwrap(), Some(1), "within the TTL");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while cached.current(user).await.unwrap() != Some(2) {
            assert!(Instant::now() < deadline, "the cached answer never expired");
            tokio::task::yield_now().await;
        }
        assert!(reads.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn the_cache_never_holds_more_than_its_capacity() {
        let (version, reads) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(0)));
        let cached = Cached::with_limits(counting(version, reads), Duration::from_secs(60), 3);
        for _ in 0..10 {
            cached.current(Uuid::new_v4()).await.unwrap();
            assert!(cached.lock().len() <= 3);
        }
    }
}
