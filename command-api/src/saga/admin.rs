//! What an administrator does with parked events: list them, retry one with
//! the code deployed now, or skip one for good. A retry reads the event
//! again and, for an order's event, the order's stream, with this build;
//! then it steps the order's events up to the parked one as the saga would
//! once it is resolved, and executes the commands that follow against the
//! aggregates as they are now (every command is idempotent, so the saga
//! doing them again does nothing twice). An event parked because a command
//! it causes was refused thus fails the retry while it is still refused,
//! instead of being resolved only for the saga to park it again. If all of
//! that succeeds, the event is resolved, and every replica's saga picks its
//! order up again (`super::redrive`), which executes what follows.

use std::sync::Arc;

use domain::order::Order;
use domain::product::Product;
use event_store::{EventStore, Position, StoreError, StreamName};
use uuid::Uuid;

use super::commands::Commands;
use super::decode::decode;
use super::forgotten::Forgotten;
use super::parked::{self, ParkedEvent, ParkedList, Resolution};
use super::pipeline::Pipeline;
use super::poison::{Culprits, is_deterministic};
use super::progress::Progress;
use super::{SUBSCRIBER, SagaError, count_parked, redrive};
use crate::aggregates::Aggregates;

#[derive(Debug, thiserror::Error)]
pub enum ParkedError {
    #[error("no event is parked at {0}")]
    NotParked(Position),
    /// The retry failed again; the record stays, its attempts counted.
    #[error("the event still fails: {}", .0.error)]
    StillFails(Box<ParkedEvent>),
    #[error("the event store is unavailable: {0}")]
    Unavailable(#[source] StoreError),
    #[error("the parked events cannot be read or written: {0}")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for ParkedError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable { .. } | StoreError::Closed => Self::Unavailable(error),
            other => Self::Internal(other),
        }
    }
}

pub struct ParkedAdmin {
    store: Arc<dyn EventStore>,
    orders: Arc<Aggregates<Order>>,
    /// The saga's commands, executed by a retry.
    commands: Commands,
    forgotten: Forgotten,
}

impl ParkedAdmin {
    /// Products are loaded through an `Aggregates` of its own: retries are
    /// rare, and every load catches up with the store.
    pub fn new(store: Arc<dyn EventStore>, orders: Arc<Aggregates<Order>>, payment_window: chrono::TimeDelta) -> Self {
        let products = Arc::new(Aggregates::<Product>::new(Arc::clone(&store)));
        Self {
            commands: Commands::new(products, Arc::clone(&orders), payment_window),
            forgotten: Forgotten::new(Arc::clone(&orders)),
            store,
            orders,
        }
    }

    /// The saga's parked events, oldest first.
    pub async fn list(&self) -> Result<Vec<ParkedEvent>, ParkedError> {
        let list = parked::load(self.store.as_ref()).await?;
        count_parked(&list);
        Ok(list.parked().cloned().collect())
    }

    /// Tries the event at `position` again; resolved when it now reads and
    /// what it causes succeeds.
    pub async fn retry(&self, position: Position, by: Uuid) -> Result<ParkedEvent, ParkedError> {
        let list = parked::load(self.store.as_ref()).await?;
        let record = list.get(position).cloned().ok_or(ParkedError::NotParked(position))?;
        let mut still_fails = self.try_again(&record).await?;
        if still_fails.is_none() {
            still_fails = self.run_again(&list, &record).await?;
        }
        if let Some(error) = still_fails {
            let failed = parked::retry_failed(self.store.as_ref(), position, error, Some(by)).await?;
            let failed = failed.ok_or(ParkedError::NotParked(position))?;
            return Err(ParkedError::StillFails(Box::new(failed)));
        }
        let resolved = parked::resolve(self.store.as_ref(), position, Resolution::Retried, Some(by)).await?;
        tracing::info!(%position, %by, subscriber = SUBSCRIBER, "a parked event was retried with success");
        resolved.ok_or(ParkedError::NotParked(position))
    }

    /// Drops the event at `position` for good.
    pub async fn skip(&self, position: Position, by: Uuid) -> Result<ParkedEvent, ParkedError> {
        let skipped = parked::resolve(self.store.as_ref(), position, Resolution::Skipped, Some(by)).await?;
        let skipped = skipped.ok_or(ParkedError::NotParked(position))?;
        tracing::warn!(
            %position, stream = %skipped.stream, event_type = %skipped.event_type, order = ?skipped.order_id,
            %by, subscriber = SUBSCRIBER, "an administrator skipped a parked event for good"
        );
        Ok(skipped)
    }

    /// Why `record`'s event still fails with this build, `None` when it
    /// reads, and its order's stream too. Outages are errors, not answers.
    async fn try_again(&self, record: &ParkedEvent) -> Result<Option<String>, ParkedError> {
        let stream = StreamName::new(record.stream.clone()).map_err(ParkedError::Internal)?;
        let events = self.store.read_stream(&stream, record.revision, 1).await?;
        let Some(event) = events.first() else {
            return Ok(Some(format!("the event is no longer in {}", record.stream)));
        };
        if let Err(error) = decode(event) {
            return Ok(Some(api_common::problem::ErrorChain(&error).to_string()));
        }
        let Some(order) = record.order_id else { return Ok(None) };
        match self.orders.load(order).await {
            Ok(_) => Ok(None),
            Err(error) if is_deterministic(&error) => Ok(Some(api_common::problem::ErrorChain(&error).to_string())),
            Err(crate::aggregates::CommandError::Unavailable(error)) => Err(ParkedError::Unavailable(error)),
            Err(error) => Err(ParkedError::Unavailable(StoreError::Unavailable {
                context: "loading the parked event's order",
                source: Box::new(error),
            })),
        }
    }

    /// Why the saga still fails on `record`'s order, `None` when it now
    /// succeeds: its events up to the parked one are stepped and the
    /// commands that follow executed. Outages are errors, not answers.
    async fn run_again(&self, list: &ParkedList, record: &ParkedEvent) -> Result<Option<String>, ParkedError> {
        // One order is rehearsed: a ledger of one place admits it.
        let ledger = domain::order_saga::Unsettled::new(1, chrono::TimeDelta::zero());
        let mut progress = Progress::resuming_after(record.replay_after, None, ledger);
        let mut culprits = Culprits::default();
        let rehearsed = redrive::rehearse(self.store.as_ref(), &mut progress, list, record, &mut culprits).await;
        let outcome = match rehearsed {
            Ok(commands) => {
                let mut pipeline = Pipeline::new(&self.commands, &self.forgotten);
                match pipeline.submit(&mut progress, culprits, commands, None).await {
                    Ok(()) => pipeline.drain(&mut progress).await,
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => Ok(None),
            Err(SagaError::Poison { culprit, error }) if culprit.position == record.position => Ok(Some(error)),
            Err(SagaError::Poison { culprit, error }) => Ok(Some(format!(
                "the event at {} in {} ({}) of the same order fails: {error}",
                culprit.position, culprit.stream, culprit.event_type
            ))),
            Err(SagaError::Store(error)) => Err(error.into()),
            Err(error) => Err(ParkedError::Unavailable(StoreError::Unavailable {
                context: "executing the parked event's commands",
                source: Box::new(error),
            })),
        }
    }
}
