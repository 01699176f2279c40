//! Credential versions and revoked tokens: how verifiers learn that a token
//! was issued before its user's password or role last changed (or the user
//! logged out everywhere), or was itself logged out.
//!
//! A token carries `ver`, the number of events in its account's stream when
//! it was issued (every account event, registration, password change, role
//! change, logout everywhere, changes a credential). A verifier refuses it
//! once the account's current version is greater, and refuses a token whose
//! id (`jti`) was revoked by a logout. The command API asks its event
//! store; the query API and the projectors' admin API ask the views
//! (`users`, `revoked_tokens`) through [`Cached`], so a refusal comes at
//! most one projection lag plus [`VERSION_CACHE_TTL`] after the change.

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

/// What a revocation lookup answers: whether the token was revoked.
pub type Revocation<'a> = BoxFuture<'a, Result<bool, LookupError>>;

/// What a request is answered (503 problem+json, `Retry-After: 1`) when a
/// source cannot be read: the problem's kind and detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub kind: &'static str,
    pub detail: &'static str,
}

/// Where a verifier reads an account's current credential version, and
/// whether one token was revoked.
pub trait CredentialVersions: Send + Sync {
    fn current(&self, user: Uuid) -> Lookup<'_>;

    /// Whether the token with the id `token` (its `jti`) was logged out.
    fn revoked(&self, token: Uuid) -> Revocation<'_>;

    /// How an unreadable version is answered: the client should retry, not
    /// log in again.
    fn outage(&self) -> Outage {
        Outage {
            kind: "credentials-unavailable",
            detail: "the account's credentials cannot be checked now; retry",
        }
    }
}

/// A source made of two functions, e.g. queries of the views: a user's
/// version, and whether a token id was revoked.
pub struct Sources<V, R> {
    pub version: V,
    pub revoked: R,
}

impl<V, R> CredentialVersions for Sources<V, R>
where
    V: Fn(Uuid) -> Lookup<'static> + Send + Sync,
    R: Fn(Uuid) -> Revocation<'static> + Send + Sync,
{
    fn current(&self, user: Uuid) -> Lookup<'_> {
        (self.version)(user)
    }

    fn revoked(&self, token: Uuid) -> Revocation<'_> {
        (self.revoked)(token)
    }
}

/// How long a version (or a token's revocation) read from the views is
/// trusted: part of the delay before a changed password or role, or a
/// logout, refuses older tokens.
pub const VERSION_CACHE_TTL: Duration = Duration::from_secs(5);

/// How many users' versions (and, apart, how many tokens' revocations) are
/// cached at most, so memory stays bounded whatever tokens arrive.
pub const VERSION_CACHE_CAPACITY: usize = 10_000;

/// A source's answers remembered for a while, so each request does not cost
/// a query; errors are not remembered.
pub struct Cached<S> {
    source: S,
    versions: Memo<Option<u64>>,
    revocations: Memo<bool>,
}

impl<S: CredentialVersions> Cached<S> {
    /// With [`VERSION_CACHE_TTL`] and [`VERSION_CACHE_CAPACITY`].
    pub fn new(source: S) -> Self {
        Self::with_limits(source, VERSION_CACHE_TTL, VERSION_CACHE_CAPACITY)
    }

    pub fn with_limits(source: S, ttl: Duration, capacity: usize) -> Self {
        Self {
            source,
            versions: Memo::new(ttl, capacity),
            revocations: Memo::new(ttl, capacity),
        }
    }
}

impl<S: CredentialVersions> CredentialVersions for Cached<S> {
    fn current(&self, user: Uuid) -> Lookup<'_> {
        Box::pin(async move {
            if let Some(version) = self.versions.fresh(user) {
                return Ok(version);
            }
            let version = self.source.current(user).await?;
            self.versions.remember(user, version);
            Ok(version)
        })
    }

    fn revoked(&self, token: Uuid) -> Revocation<'_> {
        Box::pin(async move {
            if let Some(revoked) = self.revocations.fresh(token) {
                return Ok(revoked);
            }
            let revoked = self.source.revoked(token).await?;
            self.revocations.remember(token, revoked);
            Ok(revoked)
        })
    }

    fn outage(&self) -> Outage {
        self.source.outage()
    }
}

/// Answers by id, each trusted for `ttl`, at most `capacity` of them.
struct Memo<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Uuid, (Instant, V)>>,
}

impl<V: Copy> Memo<V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, id: Uuid) -> Option<V> {
        let entries = self.lock();
        let (read_at, value) = entries.get(&id)?;
        (read_at.elapsed() < self.ttl).then_some(*value)
    }

    /// Remembers `value`; when full, forgets the expired entries first,
    /// and everything if none had expired.
    fn remember(&self, id: Uuid, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&id) {
            entries.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(id, (Instant::now(), value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A source answering its counter (and "revoked" once it passes 1),
    /// counting the reads.
    fn counting(version: Arc<AtomicU64>, reads: Arc<AtomicU64>) -> impl CredentialVersions {
        let (versions, revocations) = (Arc::clone(&version), Arc::clone(&reads));
        Sources {
            version: move |_user| {
                reads.fetch_add(1, Ordering::SeqCst);
                let version = versions.load(Ordering::SeqCst);
                Box::pin(async move { Ok(Some(version)) }) as Lookup<'static>
            },
            revoked: move |_token| {
                revocations.fetch_add(1, Ordering::SeqCst);
                let revoked = version.load(Ordering::SeqCst) > 1;
                Box::pin(async move { Ok(revoked) }) as Revocation<'static>
            },
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
    async fn a_revocation_is_reused_until_its_ttl_ends() {
        let (version, reads) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(0)));
        let ttl = Duration::from_millis(200);
        let cached = Cached::with_limits(counting(Arc::clone(&version), Arc::clone(&reads)), ttl, 10);
        let token = Uuid::new_v4();
        assert!(!cached.revoked(token).await.unwrap());
        version.store(2, Ordering::SeqCst);
        assert!(!cached.revoked(token).await.unwrap(), "within the TTL");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cached.revoked(token).await.unwrap() {
            assert!(Instant::now() < deadline, "the cached answer never expired");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_cache_never_holds_more_than_its_capacity() {
        let (version, reads) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(0)));
        let cached = Cached::with_limits(counting(version, reads), Duration::from_secs(60), 3);
        for _ in 0..10 {
            cached.current(Uuid::new_v4()).await.unwrap();
            cached.revoked(Uuid::new_v4()).await.unwrap();
            assert!(cached.versions.lock().len() <= 3);
            assert!(cached.revocations.lock().len() <= 3);
        }
    }
}
