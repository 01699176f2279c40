//! Running a projection: follow the log from the checkpoint, apply batches
//! in transactions that also move the checkpoint.

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, Position, RecordedEvent, StoreError, StreamFilter};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use views::checkpoint;

use crate::database;
use crate::generations::{Slot, Writer};
use crate::instance::{Instance, Stall, Subscriber};
use crate::parked;
use crate::projection::{ApplyError, Projection};
use crate::quarantine::{self, Attempts, Poison, Quarantine};

#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    /// The most events applied in one transaction.
    pub batch_size: usize,
    /// How long a projection's lease lasts unless renewed (every third of
    /// it): on SQLite, how long a crashed instance's projections wait for
    /// another (on Postgres a session lock decides: `claim.rs`).
    pub lease_ttl: Duration,
    /// How events the projection cannot read are retried and parked, and
    /// the pause before a restart after an outage.
    pub quarantine: Quarantine,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease_ttl: crate::config::DEFAULT_LEASE,
            quarantine: Quarantine::default(),
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
    /// so after its attempts the event is parked (`quarantine.rs`).
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

/// Runs `projection` until `shutdown` or an error (an outage), as an
/// instance of its own. `progress` receives the checkpoint after each
/// commit.
pub async fn run(
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    projection: Arc<dyn Projection>,
    options: ProjectorOptions,
    progress: watch::Sender<Option<Position>>,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    let instance = Instance::default();
    let subscriber = instance.register(projection.name(), progress.subscribe());
    let follower = Follower {
        store,
        db,
        projection,
        slot: Slot::Live,
        options,
        progress,
        subscriber,
        parked_by: instance.id().to_owned(),
    };
    follower.follow(&shutdown).await
}

/// A projection following the log for one instance.
pub struct Follower {
    pub store: Arc<dyn EventStore>,
    pub db: DatabaseConnection,
    pub projection: Arc<dyn Projection>,
    /// The generation it writes: the live one, or a rebuild's.
    pub slot: Slot,
    pub options: ProjectorOptions,
    /// Receives the checkpoint after each commit.
    pub progress: watch::Sender<Option<Position>>,
    /// Where its instance sees it stalled.
    pub subscriber: Arc<Subscriber>,
    /// The instance's id, recorded with what it parks.
    pub parked_by: String,
}

/// What became of a batch.
pub(crate) enum Step {
    /// Committed up to this position (the batch's last event, or the
    /// event parked).
    Applied(Position),
    /// An event could not be read; it will be tried again.
    Again,
    /// The checkpoint was moved by a replay or another projector.
    Moved,
}

impl Follower {
    /// The key of the generation's checkpoint, parked events and lock:
    /// the projection's name with the generation's suffix.
    pub fn key(&self) -> String {
        self.slot.name(self.projection.name())
    }

    /// Follows the log from the checkpoint until `shutdown` or an error.
    pub async fn follow(&self, shutdown: &CancellationToken) -> Result<(), ProjectorError> {
        let key = self.key();
        let mut attempts = Attempts::default();
        'restart: loop {
            let mut applied = checkpoint::load(&self.db, &key).await?;
            self.progress.send_replace(applied);
            self.subscriber.set_held(true);
            parked::refresh_gauge(&self.db, &key).await?;
            tracing::info!(projection = key, from = ?applied.map(|p| p.to_string()), "projecting");
            // Every stream, not only the projection's own: the checkpoint then
            // passes every position, so a reader waiting for a position the
            // projection has no row for is not kept waiting.
            let mut events = self.store.subscribe_all(applied, StreamFilter::all());
            loop {
                let mut batch = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    next = events.next_batch(self.options.batch_size) => next.ok_or(ProjectorError::SubscriptionEnded)??,
                };
                // The log may deliver an event again (a subscription that
                // reconnects); what the checkpoint covers is applied already.
                batch.retain(|event| applied.is_none_or(|applied| event.position > applied));
                log_batch(&key, &batch);
                while !batch.is_empty() {
                    match self.step(applied, &batch, &mut attempts).await? {
                        Step::Applied(to) => {
                            applied = Some(to);
                            self.progress.send_replace(applied);
                            batch.retain(|event| event.position > to);
                        }
                        Step::Moved => continue 'restart,
                        Step::Again => tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(self.options.quarantine.pause) => {}
                        },
                    }
                }
            }
        }
    }

    /// Commits `batch`; when an event in it cannot be read, counts the
    /// attempt, and parks the event once the attempts are spent.
    pub(crate) async fn step(
        &self,
        applied: Option<Position>,
        batch: &[RecordedEvent],
        attempts: &mut Attempts,
    ) -> Result<Step, ProjectorError> {
        let error = match self.commit(applied, batch, None).await {
            Ok(step) => {
                attempts.clear();
                self.subscriber.set_stalled(None);
                return Ok(step);
            }
            Err(error) => error,
        };
        let Some(position) = quarantine::poisoned(&error) else {
            return Err(error);
        };
        let failed = attempts.failed_at(position);
        if failed < self.options.quarantine.attempts {
            tracing::warn!(projection = self.key(), %position, attempt = failed, %error, "cannot read an event; trying again");
            self.subscriber.set_stalled(Some(Stall {
                position,
                attempts: failed,
                error: error.to_string(),
            }));
            return Ok(Step::Again);
        }
        let poison = Poison {
            position,
            error: error.to_string(),
            parked_by: &self.parked_by,
            attempts: failed,
        };
        let step = self.commit(applied, batch, Some(poison)).await?;
        attempts.clear();
        self.subscriber.set_stalled(None);
        Ok(step)
    }

    /// Applies `batch` in one transaction that moves the checkpoint past
    /// it; with `poison`, only up to the poison event, which it parks.
    async fn commit(
        &self,
        applied: Option<Position>,
        batch: &[RecordedEvent],
        poison: Option<Poison<'_>>,
    ) -> Result<Step, ProjectorError> {
        let key = self.key();
        let last = poison
            .as_ref()
            .map_or_else(|| batch.last().map(|e| e.position).unwrap_or_default(), |p| p.position);
        let started = std::time::Instant::now();
        let transaction = database::begin_write(&self.db).await?;
        // Replays and other projectors of this projection wait until
        // this batch commits; if one moved the checkpoint meanwhile,
        // the compare-and-set below notices.
        database::lock_projection(&transaction, &key).await?;
        if self.slot == Slot::Next {
            database::commit_lazily(&transaction).await?;
        }
        if !checkpoint::advance(&transaction, &key, applied, last).await? {
            transaction.rollback().await?;
            tracing::warn!(
                projection = key,
                "checkpoint moved elsewhere (replay or another projector); restarting"
            );
            return Ok(Step::Moved);
        }
        let writer = Writer {
            transaction: &transaction,
            slot: self.slot,
        };
        let parked = match poison {
            None => {
                apply(&writer, self.projection.as_ref(), batch).await?;
                false
            }
            Some(poison) => quarantine::apply_around(&writer, self.projection.as_ref(), batch, poison).await?,
        };
        let events = batch.iter().filter(|event| event.position <= last).count();
        if self.slot == Slot::Next {
            crate::generations::record::progress(&transaction, self.projection.name(), events as u64).await?;
        }
        transaction.commit().await?;
        if parked {
            parked::count_parked(&key, 1);
            parked::refresh_gauge(&self.db, &key).await?;
        }
        metrics::counter!("projector_events_total", "projection" => key.clone()).increment(events as u64);
        metrics::counter!("projector_batches_total", "projection" => key.clone()).increment(1);
        metrics::gauge!("projector_checkpoint_commit_position", "projection" => key.clone()).set(last.commit as f64);
        metrics::histogram!("projector_batch_duration_seconds", "projection" => key)
            .record(started.elapsed().as_secs_f64());
        Ok(Step::Applied(last))
    }
}

/// Logs, at debug, each event of `batch` that `projection` takes in, with
/// the correlation and trace ids that lead back to the request it comes
/// from.
fn log_batch(projection: &str, batch: &[RecordedEvent]) {
    for event in batch {
        tracing::debug!(
            projection,
            position = %event.position,
            stream = %event.stream,
            event_type = %event.event_type,
            correlation_id = %event.metadata.correlation_id,
            trace_id = event.metadata.trace_id.map(tracing::field::display),
            "projecting an event"
        );
    }
}

/// Applies `batch` to `projection` as `writer` says; a failure names the
/// positions the batch spans.
pub(crate) async fn apply(
    writer: &Writer<'_>,
    projection: &dyn Projection,
    batch: &[RecordedEvent],
) -> Result<(), ProjectorError> {
    let position = |event: Option<&RecordedEvent>| event.map(|event| event.position).unwrap_or_default();
    let (first, last) = (position(batch.first()), position(batch.last()));
    projection.apply(writer, batch).await.map_err(|source| match source {
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
