//! The signatures this process has accepted, so the same signed request
//! sent again within the tolerance is refused.
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
    /// are kept, so only the provider (or whoever holds the secret) fills
    /// it; past `capacity` the oldest is forgotten first.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(LinkedHashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Records `signature`, stale after `stale_after`; false when it was
    /// recorded before and is not stale yet at `now`.
    pub fn first_use(&self, signature: &[u8], stale_after: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while seen.front().is_some_and(|(_, stale)| *stale < now) {
            seen.pop_front();
        }
        if seen.get(signature).is_some_and(|stale| *stale >= now) {
            return false;
        }
        while seen.len() >= self.capacity {
            seen.pop_front();
        }
        seen.insert(signature.to_vec(), stale_after);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_refused_the_second_time_until_it_is_stale() {
        let replays = Replays::new(10);
        assert!(replays.first_use(b"a", 100, 50));
        assert!(!replays.first_use(b"a", 100, 60));
        assert!(!replays.first_use(b"a", 100, 100));
        assert!(replays.first_use(b"b", 100, 60));
        assert!(replays.first_use(b"a", 200, 101), "stale entries are forgotten");
    }

    #[test]
    fn past_its_capacity_the_oldest_is_forgotten() {
        let replays = Replays::new(2);
        assert!(replays.first_use(b"a", 100, 0));
        assert!(replays.first_use(b"b", 100, 0));
        assert!(replays.first_use(b"c", 100, 0));
        assert!(!replays.first_use(b"c", 100, 0));
        assert!(!replays.first_use(b"b", 100, 0));
        assert!(replays.first_use(b"a", 100, 0), "forgotten to make room");
    }
}
