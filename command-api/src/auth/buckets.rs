//! Token buckets per key in a table of fixed capacity.
//!
//! Each bucket holds up to `burst` tokens and gains one every `refill`. It
//! is kept as one instant, the moment it will be full again (the "generic
//! cell rate algorithm"): a full bucket is the same as no entry, so only
//! keys that spent tokens recently take room.
//!
//! The table holds at most `capacity` keys. A new key in a full table
//! evicts the least recently charged one, which forgets what it spent.
//! That is safe enough: to push a key out, an attacker must charge
//! `capacity` other keys after it, each attempt paid from some other
//! budget (a username's attempts come from an address's budget, and the
//! reverse), and the evicted key only gets back the `burst` tokens it would
//! regain anyway after `burst × refill`. Refusing new keys instead would
//! let the same attacker lock everyone else out. Keys are hashed with the
//! process's random SipHash keys, so chosen keys cannot collide on purpose.

use std::collections::hash_map::RandomState;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// How many attempts a key may make at once, and how fast it earns more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Tokens in a full bucket: the attempts allowed back to back.
    pub burst: u32,
    /// The time that earns one token back.
    pub refill: Duration,
}

pub struct Buckets<K> {
    budget: Budget,
    /// Per key, when its bucket is full again; least recently charged first.
    table: Mutex<LruCache<K, Instant, RandomState>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(budget: Budget, capacity: usize) -> Self {
        Self {
            budget,
            table: Mutex::new(LruCache::with_hasher(capacity.max(1), RandomState::new())),
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until it has
    /// one; a refusal changes nothing.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut table = self.lock();
        let full_at = table.peek(key).copied().filter(|&at| at > now).unwrap_or(now);
        let after = full_at + self.budget.refill;
        let limit = now + self.budget.refill.saturating_mul(self.budget.burst);
        if after > limit {
            return Err(after - limit);
        }
        table.insert(key.clone(), after);
        Ok(())
    }

    /// Returns a token taken for an attempt that was never judged.
    pub fn give_back(&self, key: &K, now: Instant) {
        let mut table = self.lock();
        let Some(full_at) = table.peek_mut(key) else {
            return;
        };
        match full_at.checked_sub(self.budget.refill) {
            Some(earlier) if earlier > now => *full_at = earlier,
            _ => {
                table.remove(key);
            }
        }
    }

    /// Fills `key`'s bucket.
    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// The keys held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<K, Instant, RandomState>> {
        // The table is consistent after every statement; a panic elsewhere
        // while it was locked leaves nothing half done.
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn buckets(burst: u32, capacity: usize) -> Buckets<u64> {
        Buckets::new(Budget { burst, refill: MINUTE }, capacity)
    }

    #[test]
    fn a_key_spends_its_burst_then_waits_one_refill_per_token() {
        let buckets = buckets(3, 10);
        let now = Instant::now();
        for _ in 0..3 {
            buckets.take(&1, now).unwrap();
        }
        assert_eq!(buckets.take(&1, now), Err(MINUTE));
        assert_eq!(buckets.take(&1, now + MINUTE / 2), Err(MINUTE / 2));
        buckets.take(&1, now + MINUTE).unwrap();
        assert_eq!(buckets.take(&1, now + MINUTE), Err(MINUTE));
        buckets.take(&2, now).unwrap();
    }

    #[test]
    fn a_token_given_back_or_a_forgotten_key_can_be_spent_again() {
        let buckets = buckets(2, 10);
        let now = Instant::now();
        buckets.take(&1, now).unwrap();
        buckets.take(&1, now).unwrap();
        buckets.give_back(&1, now);
        buckets.take(&1, now).unwrap();
        assert!(buckets.take(&1, now).is_err());
        buckets.forget(&1);
        buckets.take(&1, now).unwrap();
        buckets.give_back(&1, now);
        assert_eq!(buckets.len(), 0, "a full bucket takes no room");
    }

    /// Far more keys than the capacity: the table stays at its capacity,
    /// and the keys charged last are the ones it still remembers.
    #[test]
    fn the_table_never_holds_more_than_its_capacity() {
        let buckets = buckets(1, 1000);
        let now = Instant::now();
        for key in 0..100_000 {
            buckets.take(&key, now).unwrap();
            assert!(buckets.len() <= 1000);
        }
        assert_eq!(buckets.len(), 1000);
        assert!(buckets.take(&99_999, now).is_err(), "a recent key is remembered");
        assert!(buckets.take(&0, now).is_ok(), "the oldest was evicted");
    }
}
