//! Running a projection: follow the log from the checkpoint, apply batches
//! in transactions that also move the checkpoint.

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, Position, RecordedEvent, StoreError, StreamFilter};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use views::checkpoint;

use crate::database;
use crate::projection::{ApplyError, Projection};

#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    /// The most events applied in one transaction.
    pub batch_size: usize,
    /// How long a projection's lease lasts unless renewed (every third of
    /// it): on SQLite, how long a crashed instance's projections wait for
    /// another (on Postgres a session lock decides: `claim.rs`).
    pub lease_ttl: Duration,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease_ttl: crate::config::DEFAULT_LEASE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the views database failed: {0}")]
    Database(#[from] DbErr),
    /// An event the projection cannot read: applying it again fails again,
    /// so the projection stops.
    #[error("projection {projection} cannot apply the events {first}..={last}: {source}")]
    Apply {
        projection: &'static str,
        first: Position,
        last: Position,
        #[source]
        source: ApplyError,
    },
    /// Writing a batch's rows failed (a lost connection, a deadlock, a
    /// serialization failure): worth another try.
    #[error("projection {projection} cannot write the events {first}..={last}: {source}")]
    Write {
        projection: &'static str,
        first: Position,
        last: Position,
        #[source]
        source: DbErr,
    },
    #[error("the subscription to the log ended")]
    SubscriptionEnded,
}

/// Runs `projection` until `shutdown` or an error. `progress` receives the
/// checkpoint after each commit.
pub async fn run(
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    projection: Arc<dyn Projection>,
    options: ProjectorOptions,
    progress: watch::Sender<Option<Position>>,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    let name = projection.name();
    'restart: loop {
        let mut applied = checkpoint::load(&db, name).await?;
        progress.send_replace(applied);
        tracing::info!(projection = name, from = ?applied.map(|p| p.to_string()), "projecting");
        // Every stream, not only the projection's own: the checkpoint then
        // passes every position, so a reader waiting for a position the
        // projection has no row for is not kept waiting.
        let mut events = store.subscribe_all(applied, StreamFilter::all());
        loop {
            let mut batch = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = events.next_batch(options.batch_size) => next.ok_or(ProjectorError::SubscriptionEnded)??,
            };
            // The log may deliver an event again (a subscription that
            // reconnects); what the checkpoint covers is applied already.
            batch.retain(|event| applied.is_none_or(|applied| event.position > applied));
            let Some(last) = batch.last().map(|event| event.position) else {
                continue;
            };
            let started = std::time::Instant::now();
            let transaction = database::begin_write(&db).await?;
            // Replays and other projectors of this projection wait until
            // this batch commits; if one moved the checkpoint meanwhile,
            // the compare-and-set below notices.
            database::lock_projection(&transaction, name).await?;
            if !checkpoint::advance(&transaction, name, applied, last).await? {
                transaction.rollback().await?;
                tracing::warn!(
                    projection = name,
                    "checkpoint moved elsewhere (replay or another projector); restarting"
                );
                continue 'restart;
            }
            apply(&transaction, projection.as_ref(), &batch).await?;
            transaction.commit().await?;
            applied = Some(last);
            progress.send_replace(applied);
            metrics::counter!("projector_events_total", "projection" => name).increment(batch.len() as u64);
            metrics::counter!("projector_batches_total", "projection" => name).increment(1);
            metrics::gauge!("projector_checkpoint_commit_position", "projection" => name).set(last.commit as f64);
            metrics::histogram!("projector_batch_duration_seconds", "projection" => name)
                .record(started.elapsed().as_secs_f64());
        }
    }
}

/// Applies `batch` to `projection` in `transaction`; a failure names the
/// positions the batch spans.
pub(crate) async fn apply(
    transaction: &DatabaseTransaction,
    projection: &dyn Projection,
    batch: &[RecordedEvent],
) -> Result<(), ProjectorError> {
    let position = |event: Option<&RecordedEvent>| event.map(|event| event.position).unwrap_or_default();
    let (first, last) = (position(batch.first()), position(batch.last()));
    projection
        .apply(transaction, batch)
        .await
        .map_err(|source| match source {
            ApplyError::Database(source) => ProjectorError::Write {
                projection: projection.name(),
                first,
                last,
                source,
            },
            source @ ApplyError::Decode { .. } => ProjectorError::Apply {
                projection: projection.name(),
                first,
                last,
                source,
            },
        })
}
