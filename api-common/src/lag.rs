//! When a subscriber of the log (a projection, the order saga) counts as
//! lagging for readiness: when it has been behind the log head
//! continuously for longer than `SUBSCRIBER_LAG_LIMIT_MS`. The clock starts
//! when this process first sees it behind, not when its oldest pending
//! event was recorded: one that starts on an old log (a new views
//! database, a replay, an old checkpoint) has been behind for no time yet
//! and is moving, and would otherwise be unready at once, every instance
//! catching up with it.
//!
//! Pure (the caller passes the instant), so the rule is tested on explicit
//! instants; positions are generic so this crate needs no event store.

use std::time::{Duration, Instant};

/// A subscriber seen behind: since when, and the head it was behind then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind<P> {
    pub since: Instant,
    pub head: P,
}

impl<P> Behind<P> {
    /// How long it has been behind at `now`.
    pub fn for_how_long(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

/// Where a subscriber stands after a look at `now`, given what was `seen`
/// before, `pending` (the position of its oldest event not yet applied,
/// `None` when it is caught up) and the log's `head`.
///
/// Caught up: `None`, the clock reset. Still short of the head it was
/// behind when first seen: `seen`, unchanged. Past that head (it moved,
/// though the log moved on too): behind from `now`, of today's head. So a
/// subscriber that keeps a little behind a busy log never accumulates lag,
/// and one that does not reach the head of `limit` ago is lagging.
pub fn observe<P: Ord + Copy>(
    seen: Option<Behind<P>>,
    pending: Option<P>,
    head: Option<P>,
    now: Instant,
) -> Option<Behind<P>> {
    let pending = pending?;
    match seen {
        Some(seen) if pending <= seen.head => Some(seen),
        _ => Some(Behind {
            since: now,
            head: head.map_or(pending, |head| head.max(pending)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    fn lag(seen: Option<Behind<u64>>, now: Instant) -> Duration {
        seen.map_or(Duration::ZERO, |behind| behind.for_how_long(now))
    }

    #[test]
    fn a_subscriber_first_seen_behind_an_old_log_has_lagged_for_no_time() {
        let start = Instant::now();
        let seen = observe(None, Some(1), Some(1_000_000), start);
        assert_eq!(
            seen,
            Some(Behind {
                since: start,
                head: 1_000_000
            })
        );
        assert_eq!(lag(seen, start), Duration::ZERO);
    }

    #[test]
    fn behind_the_same_head_for_longer_than_the_limit_is_lagging() {
        let start = Instant::now();
        let mut seen = observe(None, Some(1), Some(100), start);
        seen = observe(seen, Some(50), Some(200), start + LIMIT);
        assert_eq!(lag(seen, start + LIMIT), LIMIT, "at the limit, not past it");
        let later = start + LIMIT + Duration::from_millis(1);
        seen = observe(seen, Some(100), Some(300), later);
        assert_eq!(seen.map(|behind| behind.since), Some(start));
        assert!(lag(seen, later) > LIMIT);
    }

    #[test]
    fn caught_up_resets_the_clock() {
        let start = Instant::now();
        let seen = observe(None, Some(1), Some(100), start);
        let caught_up = observe(seen, None, Some(100), start + LIMIT);
        assert_eq!(caught_up, None);
        let again = start + LIMIT * 2;
        let seen = observe(caught_up, Some(101), Some(102), again);
        assert_eq!(
            seen,
            Some(Behind {
                since: again,
                head: 102
            })
        );
        assert_eq!(lag(seen, again), Duration::ZERO);
    }

    #[test]
    fn past_the_head_it_was_behind_the_clock_starts_again() {
        let start = Instant::now();
        let seen = observe(None, Some(1), Some(100), start);
        let moved = start + Duration::from_secs(10);
        let seen = observe(seen, Some(101), Some(150), moved);
        assert_eq!(
            seen,
            Some(Behind {
                since: moved,
                head: 150
            })
        );
        assert_eq!(
            lag(seen, start + LIMIT + Duration::from_secs(1)),
            LIMIT - Duration::from_secs(9)
        );
    }

    #[test]
    fn a_head_behind_the_pending_event_counts_as_that_event() {
        let start = Instant::now();
        assert_eq!(
            observe(None, Some(7), None, start),
            Some(Behind { since: start, head: 7 })
        );
        assert_eq!(
            observe(None, Some(7), Some(5), start),
            Some(Behind { since: start, head: 7 })
        );
    }
}
