//! The order saga's runner: feeds order and product events to the pure saga
//! in `domain::order_saga` and executes the commands it returns.
//!
//! It follows the log from its checkpoint. Every command is idempotent in
//! its aggregate, so replaying events after a crash repeats commands
//! harmlessly, and two runners at once cannot apply anything twice. The
//! checkpoint it saves is the position before the oldest order still being
//! reserved, so a restart replays every unfinished order from its start.
//!
//! - this module: the run loop, batches from the log and when to save the
//!   checkpoint;
//! - `decode`: recorded events to the domain events the saga reads;
//! - `progress`: stepping the pure saga order by order, and where a restart
//!   must resume;
//! - `commands`: executing the commands, grouped by the stream they append
//!   to;
//! - `forgotten`: reservations for orders the runner does not remember,
//!   decided from the order's own stream (released if it ended);
//! - `checkpoint`: where a restart resumes, kept in the event store.

mod checkpoint;
mod commands;
mod decode;
mod forgotten;
mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::event::{DecodeError, DomainEvent};
use domain::order::{Order, OrderEvent};
use domain::product::{Product, ProductEvent};
use event_store::{EventStore, Position, RecordedEvent, StoreError, StreamFilter};
use tokio_util::sync::CancellationToken;

pub use self::checkpoint::STREAM as CHECKPOINT_STREAM;
use self::commands::Commands;
use self::decode::{Decoded, decode};
use self::forgotten::Forgotten;
use self::progress::Progress;
use crate::aggregates::Aggregates;

#[derive(Debug, Clone)]
pub struct SagaOptions {
    /// How often progress is saved while events flow.
    pub checkpoint_every: Duration,
    /// The most events handled together.
    pub batch: usize,
}

impl Default for SagaOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(1),
            batch: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
    #[error("event at {position} cannot be read: {source}")]
    Decode {
        position: Position,
        #[source]
        source: DecodeError,
    },
    #[error("a saga command failed: {0}")]
    Command(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the subscription to the log ended")]
    SubscriptionEnded,
}

pub struct OrderSaga {
    store: Arc<dyn EventStore>,
    commands: Commands,
    forgotten: Forgotten,
    options: SagaOptions,
}

/// The checkpoint last saved, and when.
struct Saved {
    after: Option<Position>,
    at: Instant,
}

impl OrderSaga {
    pub fn new(
        store: Arc<dyn EventStore>,
        products: Arc<Aggregates<Product>>,
        orders: Arc<Aggregates<Order>>,
        options: SagaOptions,
    ) -> Self {
        Self {
            store,
            forgotten: Forgotten::new(Arc::clone(&orders)),
            commands: Commands::new(products, orders),
            options,
        }
    }

    /// Runs until `shutdown` (then saves where to resume) or an error. After
    /// an error it saves nothing, as after a crash: a restart resumes from
    /// the last checkpoint saved and replays what came after it.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), SagaError> {
        let resume = checkpoint::load(self.store.as_ref()).await?;
        tracing::info!(resume = ?resume.map(|p| p.to_string()), "order saga started");
        let mut progress = Progress::resuming_after(resume);
        let mut saved = Saved {
            after: resume,
            at: Instant::now(),
        };
        let filter = StreamFilter::prefixes([OrderEvent::stream_prefix(), ProductEvent::stream_prefix()]);
        let mut events = self.store.subscribe_all(resume, filter);
        loop {
            let batch = tokio::select! {
                () = shutdown.cancelled() => break,
                next = events.next_batch(self.options.batch) => next.ok_or(SagaError::SubscriptionEnded)??,
            };
            self.handle(&mut progress, &batch).await?;
            if saved.at.elapsed() >= self.options.checkpoint_every {
                self.save(&mut saved, progress.resume_point()).await?;
            }
        }
        self.save(&mut saved, progress.resume_point()).await
    }

    /// Steps the saga through `batch`, then executes the commands that
    /// follow (for reservations of orders it does not remember, as their
    /// streams say), and those that follow from what they find, until none
    /// is left.
    async fn handle(&self, progress: &mut Progress, batch: &[RecordedEvent]) -> Result<(), SagaError> {
        let mut commands = Vec::new();
        for recorded in batch {
            let event = decode(recorded)?;
            commands.extend(progress.observe(recorded, event.as_ref().map(Decoded::as_saga_event)));
        }
        commands.extend(self.forgotten.follow_up(progress.take_forgotten()).await?);
        while !commands.is_empty() {
            let found = self.commands.execute_all(commands).await?;
            commands = found
                .into_iter()
                .flat_map(|(event, causation)| progress.step(event, causation))
                .collect();
        }
        Ok(())
    }

    /// Saves `resume_point` unless it is saved already.
    async fn save(&self, saved: &mut Saved, resume_point: Option<Position>) -> Result<(), SagaError> {
        if resume_point != saved.after {
            checkpoint::save(self.store.as_ref(), resume_point).await?;
            *saved = Saved {
                after: resume_point,
                at: Instant::now(),
            };
        }
        Ok(())
    }
}

/// Runs the saga until `shutdown`, restarting it after errors.
pub async fn supervise(saga: OrderSaga, shutdown: CancellationToken) {
    loop {
        match saga.run(shutdown.clone()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "order saga stopped; restarting from its checkpoint");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
