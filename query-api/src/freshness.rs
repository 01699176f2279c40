//! Read-your-writes: a client passes the position a command returned, and
//! a read waits (a bounded time) until the projections it reads have
//! applied the log up to that position.
//!
//! The checkpoints are polled by one background task per process and kept
//! in memory, so a read costs no extra query: the position it reports is
//! one its data reflects at least (checkpoints only grow, and the rows are
//! read after the checkpoint was).

use std::time::Duration;

use event_store::Position;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;

/// How often the checkpoints are read.
const POLL: Duration = Duration::from_millis(5);

type Checkpoints = Vec<(String, Position)>;

#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    #[error("the views have not reached position {wanted} within the wait")]
    NotYet { wanted: Position },
}

pub struct Freshness {
    checkpoints: watch::Receiver<Checkpoints>,
    wait: Duration,
}

impl Freshness {
    /// Starts polling the checkpoints of `db`; the poller stops when this
    /// value is dropped.
    pub fn new(db: DatabaseConnection, wait: Duration) -> Self {
        let (sender, checkpoints) = watch::channel(Vec::new());
        tokio::spawn(async move {
            loop {
                match projectors::checkpoint::all(&db).await {
                    Ok(current) => {
                        sender.send_if_modified(|known| {
                            let changed = *known != current;
                            *known = current;
                            changed
                        });
                    }
                    Err(error) => tracing::warn!(%error, "cannot read the projections' checkpoints"),
                }
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        });
        Self { checkpoints, wait }
    }

    /// The position the `projections` together reflect (the least of their
    /// checkpoints), once it has reached `wanted`.
    pub async fn reached(&self, projections: &[&str], wanted: Option<Position>) -> Result<Position, FreshnessError> {
        let mut checkpoints = self.checkpoints.clone();
        let reflected = |known: &Checkpoints| least(known, projections);
        let Some(wanted) = wanted else {
            return Ok(reflected(&checkpoints.borrow()));
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
