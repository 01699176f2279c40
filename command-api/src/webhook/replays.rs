//! The signatures of the requests this process settled, so the same
//! signed request sent again within the tolerance is refused. Only a
//! settled one is recorded: one whose settle failed stays good for the
//! provider's resend.
//!
//! In memory and per process: across replicas a replay may reach another
//! process, and what keeps it harmless there is the payment reference's
//! idempotency (the same reference settles an order once). A signature is
//! kept until its timestamp leaves the tolerance, after which the timestamp
//! check refuses it anyway.

use std::sync::Mutex;

use hashlink::LinkedHashMap;

pub struct Replays {
    /// Signature → the Unix second after which it is stale, oldest first.
    seen: Mutex<LinkedHashMap<Vec<u8>, i64>>,
    capacity: usize,
}

impl Replays {
    /// Keeps at most `capacity` signatures. Only signatures that verified
    /// and settled are kept, so only the provider (or whoever holds the
    /// secret) fills it; past `capacity` the oldest is forgotten first.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(LinkedHashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Whether `signature` was recorded and is not stale yet at `now`.
    pub fn used(&self, signature: &[u8], now: i64) -> bool {
        let mut seen = self.lock();
        forget_stale(&mut seen, now);
        seen.get(signature).is_some_and(|stale| *stale >= now)
    }

    /// Records `signature`, stale after `stale_after`. Recording it again
    /// (a duplicate that raced the first) keeps the first entry.
    pub fn record(&self, signature: &[u8], stale_after: i64, now: i64) {
        let mut seen = self.lock();
        forget_stale(&mut seen, now);
        if seen.contains_key(signature) {
            return;
        }
        while seen.len() >= self.capacity {
            seen.pop_front();
        }
        seen.insert(signature.to_vec(), stale_after);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<Vec<u8>, i64>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Entries are kept oldest first, and all share one tolerance, so the stale
/// ones are at the front.
fn forget_stale(seen: &mut LinkedHashMap<Vec<u8>, i64>, now: i64) {
    while seen.front().is_some_and(|(_, stale)| *stale < now) {
        seen.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_used_once_recorded_until_it_is_stale() {
        let replays = Replays::new(10);
        assert!(!replays.used(b"a", 50), "verified but not recorded");
        replays.record(b"a", 100, 50);
        assert!(replays.used(b"a", 60));
        assert!(replays.used(b"a", 100));
        assert!(!replays.used(b"b", 60));
        assert!(!replays.used(b"a", 101), "stale entries are forgotten");
        replays.record(b"a", 200, 101);
        assert!(replays.used(b"a", 150));
    }

    #[test]
    fn past_its_capacity_the_oldest_is_forgotten() {
        let replays = Replays::new(2);
        for signature in [b"a", b"b", b"c"] {
            replays.record(signature, 100, 0);
        }
        replays.record(b"c", 100, 0);
        assert!(replays.used(b"c", 0));
        assert!(replays.used(b"b", 0));
        assert!(!replays.used(b"a", 0), "forgotten to make room");
    }
}
