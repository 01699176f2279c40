//! Read-your-writes: a client passes the position a command returned, and
//! a read waits (a bounded time) until the projections it reads have
//! applied the log up to that position.
//!
//! The checkpoints are polled by one background task per process and kept
//! in memory, so a read costs no extra query: the position it reports is
//! one its data reflects at least (checkpoints only grow, and the rows are
//! read after the checkpoint was).
//!
//! The poller reads every [`WAITING_POLL`] while a read waits for a
//! position, and only every [`IDLE_POLL`] otherwise: many query API
//! instances then cost the database little when nobody waits.
//!
//! At most so many reads of the process wait at a time; past that a read
//! that would wait answers at once as if its wait had run out.

use std::sync::Arc;
use std::time::Duration;

use api_common::wait_cap::{WaitCap, Waiting};
use domain::Position;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, watch};

/// How often the checkpoints are read while a read waits for a position.
const WAITING_POLL: Duration = Duration::from_millis(5);

/// How often they are read when nobody waits: how stale the position a
/// response reports may be (its data is at least that fresh).
const IDLE_POLL: Duration = Duration::from_millis(100);

type Checkpoints = Vec<(String, Position)>;

#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    /// Not reached within the wait, or too many reads wait already.
    #[error("the views have not reached position {wanted} within the wait")]
    NotYet { wanted: Position },
}

pub struct Freshness {
    checkpoints: watch::Receiver<Checkpoints>,
    waiters: Arc<Waiters>,
    wait: Duration,
}

/// Reads waiting for a position, and the poller's alarm clock.
struct Waiters {
    cap: WaitCap,
    wake: Notify,
}

impl Waiters {
    /// A place for one more waiting read, the poller woken to poll often;
    /// `None` when the cap is reached.
    fn enter(&self) -> Option<Waiting<'_>> {
        let waiting = self.cap.enter()?;
        self.wake.notify_one();
        Some(waiting)
    }
}

impl Freshness {
    /// Starts polling the checkpoints of `db`; the poller stops when this
    /// value is dropped. A read waits up to `wait`, with at most
    /// `max_waiters` reads waiting at a time.
    pub fn new(db: DatabaseConnection, wait: Duration, max_waiters: usize) -> Self {
        let (sender, checkpoints) = watch::channel(Vec::new());
        let waiters = Arc::new(Waiters {
            cap: WaitCap::new("min-position", max_waiters),
            wake: Notify::new(),
        });
        let poller_waiters = Arc::clone(&waiters);
        tokio::spawn(async move {
            loop {
                match views::checkpoint::all(&db).await {
                    Ok(current) => {
                        sender.send_if_modified(|known| {
                            let changed = *known != current;
                            *known = current;
                            changed
                        });
                    }
                    Err(error) => tracing::warn!(%error, "cannot read the projections' checkpoints"),
                }
                let pause = match poller_waiters.cap.waiting() {
                    0 => IDLE_POLL,
                    _ => WAITING_POLL,
                };
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(pause) => {}
                    () = poller_waiters.wake.notified() => {}
                }
            }
        });
        Self {
            checkpoints,
            waiters,
            wait,
        }
    }

    /// The position the `projections` together reflect (the least of their
    /// checkpoints), once it has reached `wanted`.
    pub async fn reached(&self, projections: &[&str], wanted: Option<Position>) -> Result<Position, FreshnessError> {
        let mut checkpoints = self.checkpoints.clone();
        let reflected = |known: &Checkpoints| least(known, projections);
        let Some(wanted) = wanted else {
            return Ok(reflected(&checkpoints.borrow()));
        };
        let known = reflected(&checkpoints.borrow_and_update());
        if known >= wanted {
            return Ok(known);
        }
        let Some(_waiting) = self.waiters.enter() else {
            return Err(FreshnessError::NotYet { wanted });
        };
        let reached = tokio::time::timeout(self.wait, checkpoints.wait_for(|known| reflected(known) >= wanted)).await;
        match reached {
            Ok(Ok(known)) => Ok(reflected(&known)),
            _ => Err(FreshnessError::NotYet { wanted }),
        }
    }
}

fn least(checkpoints: &Checkpoints, projections: &[&str]) -> Position {
    projections
        .iter()
        .map(|name| {
            checkpoints
                .iter()
                .find(|(projection, _)| projection == name)
                .map(|(_, position)| *position)
                .unwrap_or_default()
        })
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use views::projections::{CATALOG, ORDERS};

    async fn views() -> DatabaseConnection {
        // One connection: every connection to `sqlite::memory:` is its own database.
        let db = views::connect("sqlite::memory:", 1).await.unwrap();
        views::migrate(&db).await.unwrap();
        db
    }

    #[tokio::test]
    async fn a_read_waits_until_every_projection_it_reads_has_reached_the_position() {
        let db = views().await;
        let freshness = Arc::new(Freshness::new(db.clone(), Duration::from_secs(5), 8));
        let wanted = Position::at(3);
        let waiting = tokio::spawn({
            let freshness = Arc::clone(&freshness);
            async move { freshness.reached(&[CATALOG, ORDERS], Some(wanted)).await }
        });
        views::checkpoint::advance(&db, CATALOG, None, Position::at(4))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "orders has not reached 3 yet");
        views::checkpoint::advance(&db, ORDERS, None, Position::at(3))
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), Position::at(3), "the least of the two");
    }

    #[tokio::test]
    async fn a_position_not_reached_within_the_wait_is_refused() {
        let freshness = Freshness::new(views().await, Duration::from_millis(50), 8);
        let outcome = freshness.reached(&[CATALOG], Some(Position::at(1))).await;
        assert!(matches!(outcome, Err(FreshnessError::NotYet { wanted }) if wanted == Position::at(1)));
        assert_eq!(freshness.waiters.cap.waiting(), 0, "the waiter is gone");
    }
}
