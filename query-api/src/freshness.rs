//! Read-your-writes: a client passes the position a command returned, and
//! a read waits (a bounded time) until the projections it reads have
//! applied the log up to that position.

use std::time::Duration;

use event_store::Position;
use sea_orm::{DatabaseConnection, DbErr};

/// How often checkpoints are looked at while waiting.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    #[error("the views have not reached position {wanted} within the wait")]
    NotYet { wanted: Position },
    #[error("the views database failed: {0}")]
    Database(#[from] DbErr),
}

pub struct Freshness {
    db: DatabaseConnection,
    wait: Duration,
}

impl Freshness {
    pub fn new(db: DatabaseConnection, wait: Duration) -> Self {
        Self { db, wait }
    }

    /// The position the `projections` together reflect (the least of their
    /// checkpoints), once it has reached `wanted`.
    pub async fn reached(&self, projections: &[&str], wanted: Option<Position>) -> Result<Position, FreshnessError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let current = self.current(projections).await?;
            match wanted {
                Some(wanted) if current < wanted => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(FreshnessError::NotYet { wanted });
                    }
                    tokio::time::sleep(POLL).await;
                }
                _ => return Ok(current),
            }
        }
    }

    async fn current(&self, projections: &[&str]) -> Result<Position, DbErr> {
        let checkpoints = projectors::checkpoint::all(&self.db).await?;
        Ok(projections
            .iter()
            .map(|name| {
                checkpoints
                    .iter()
                    .find(|(projection, _)| projection == name)
                    .map(|(_, position)| *position)
                    .unwrap_or_default()
            })
            .min()
            .unwrap_or_default())
    }
}
