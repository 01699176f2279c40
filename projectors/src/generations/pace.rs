//! How much of the machine a rebuild may take.
//!
//! A rebuild left to run flat out takes a core of the projector and one of
//! Postgres for as long as it lasts, and readers of the same database queue
//! behind it. With a pace, after each batch (and each page of a
//! verification) the rebuild pauses in proportion to the time the batch
//! took, so that it is busy at most `busy_percent` of the wall time and the
//! rest is left to the live projectors and to readers. A rebuild at 35%
//! takes about three times as long as one at 100%; its transactions are as
//! short.
//!
//! The default is what met both of #13's targets at once in the replay
//! benchmark at 1,000,000 events (`projectors/benches/replay`,
//! BENCHMARKS.md): at 35% `projectors replay all` ran at 0.74x the
//! hand-written baseline's speed (at least 0.7x asked) while the query
//! API's p99 stayed at 1.54x its idle value (at most 2x asked); at 25% the
//! p99 was 1.85x but the speed 0.55x; flat out a rebuild is about three
//! times as fast as at 35%, but readers' p99 went to 7x-59x of idle in
//! 30,000-event runs. The pause is after the
//! batch, not within it, so a batch still takes what it takes: smaller
//! batches make shorter stalls (`PROJECTOR_BATCH_SIZE`, which the CLI's
//! rebuilds honour; the admin API's use the default 500).
//!
//! Every catch-up of a generation goes at the pace, also the one before
//! a promotion or a rollback (a previous generation far behind the log
//! takes its time to roll back to); the live projectors never pause.

use std::time::Duration;

/// The share of wall time a rebuild may spend working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    busy_percent: u8,
}

/// The default pace: what `REBUILD_BUSY_PERCENT` is when unset.
pub const DEFAULT_BUSY_PERCENT: u8 = 35;

impl Pace {
    /// No pause: a rebuild as fast as it goes.
    pub const FULL: Self = Self { busy_percent: 100 };

    /// Busy at most `busy_percent` of the time, 1 to 100; `None` outside.
    pub const fn busy_percent(busy_percent: u8) -> Option<Self> {
        match busy_percent {
            1..=100 => Some(Self { busy_percent }),
            _ => None,
        }
    }

    /// How long to pause after work that took `busy`, so that the work is
    /// this pace's share of the time the two take together.
    pub fn pause_after(self, busy: Duration) -> Duration {
        let busy_percent = u32::from(self.busy_percent);
        busy * (100 - busy_percent) / busy_percent
    }

    /// Pauses as [`Pace::pause_after`] says, after work that began at
    /// `started`.
    pub async fn rest(self, started: tokio::time::Instant) {
        let pause = self.pause_after(started.elapsed());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            busy_percent: DEFAULT_BUSY_PERCENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pace_never_pauses() {
        assert_eq!(Pace::FULL.pause_after(Duration::from_millis(80)), Duration::ZERO);
    }

    #[test]
    fn the_pause_makes_the_work_its_share_of_the_time() {
        let half = Pace::busy_percent(50).unwrap();
        assert_eq!(half.pause_after(Duration::from_millis(80)), Duration::from_millis(80));
        let quarter = Pace::busy_percent(25).unwrap();
        assert_eq!(
            quarter.pause_after(Duration::from_millis(80)),
            Duration::from_millis(240)
        );
        let most = Pace::busy_percent(80).unwrap();
        assert_eq!(most.pause_after(Duration::from_millis(80)), Duration::from_millis(20));
    }

    #[test]
    fn a_share_outside_1_to_100_percent_is_refused() {
        assert_eq!(Pace::busy_percent(0), None);
        assert_eq!(Pace::busy_percent(101), None);
        assert!(Pace::busy_percent(1).is_some());
        assert!(Pace::busy_percent(100).is_some());
    }
}
