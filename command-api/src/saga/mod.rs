//! The order saga's runner: feeds order and product events to the pure saga
//! in `domain::order_saga` and executes the commands it returns.
//!
//! It follows the log from its checkpoint. Every command is idempotent in
//! its aggregate, so replaying events after a crash repeats commands
//! harmlessly, and two runners at once cannot apply anything twice. The
//! checkpoint it saves is the position before the oldest order still being
//! reserved, so a restart replays every unfinished order from its start.

mod checkpoint;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::event::{DecodeError, DomainEvent};
use domain::ids::OrderId;
use domain::order::{Order, OrderCommand, OrderError, OrderEvent};
use domain::order_saga::{SagaCommand, SagaEvent, SagaState, step};
use domain::product::{Product, ProductCommand, ProductError, ProductEvent};
use event_store::{EventStore, Position, RecordedEvent, StoreError, StreamFilter};
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::aggregates::{Aggregates, Causation, CommandError};

#[derive(Debug, Clone)]
pub struct SagaOptions {
    /// How often progress is saved while events flow.
    pub checkpoint_every: Duration,
    /// The most events handled together.
    pub batch: usize,
    /// Stops abruptly, as a crash would, after executing this many
    /// commands: without saving progress and between two commands of an
    /// order. For crash tests.
    pub crash_after_commands: Option<usize>,
}

impl Default for SagaOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(1),
            batch: 256,
            crash_after_commands: None,
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
    Command(String),
    #[error("the subscription to the log ended")]
    SubscriptionEnded,
}

/// How a run ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
    /// `crash_after_commands` was reached.
    Crashed,
}

pub struct OrderSaga {
    store: Arc<dyn EventStore>,
    products: Arc<Aggregates<Product>>,
    orders: Arc<Aggregates<Order>>,
    options: SagaOptions,
}

/// What the runner knows between batches.
#[derive(Default)]
struct Progress {
    /// Saga state of orders still being reserved.
    reserving: HashMap<OrderId, SagaState>,
    /// For each of those orders, where the log stood just before it was placed.
    resume_points: BTreeMap<OrderId, Option<Position>>,
    last: Option<Position>,
    commands_run: usize,
}

impl Progress {
    /// Where a restart must resume so that no unfinished order is missed.
    fn resume_point(&self) -> Option<Position> {
        self.resume_points.values().copied().min().unwrap_or(self.last)
    }
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
            products,
            orders,
            options,
        }
    }

    /// Runs until `shutdown`, an error, or a simulated crash.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<Stopped, SagaError> {
        let resume = checkpoint::load(self.store.as_ref()).await?;
        let mut progress = Progress {
            last: resume,
            ..Progress::default()
        };
        let mut saved = resume;
        let mut saved_at = Instant::now();
        let mut events = self.store.subscribe_all(
            resume,
            StreamFilter::prefixes([OrderEvent::stream_prefix(), ProductEvent::stream_prefix()]),
        );
        tracing::info!(resume = ?resume.map(|p| p.to_string()), "order saga started");
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                next = events.next() => next.ok_or(SagaError::SubscriptionEnded)??,
            };
            let mut batch = vec![first];
            while batch.len() < self.options.batch {
                match events.next().now_or_never() {
                    Some(Some(event)) => batch.push(event?),
                    Some(None) => return Err(SagaError::SubscriptionEnded),
                    None => break,
                }
            }
            if self.handle(&mut progress, batch).await? == Stopped::Crashed {
                return Ok(Stopped::Crashed);
            }
            let resume_point = progress.resume_point();
            if resume_point != saved && saved_at.elapsed() >= self.options.checkpoint_every {
                checkpoint::save(self.store.as_ref(), resume_point).await?;
                (saved, saved_at) = (resume_point, Instant::now());
            }
        }
        let resume_point = progress.resume_point();
        if resume_point != saved {
            checkpoint::save(self.store.as_ref(), resume_point).await?;
        }
        Ok(Stopped::Shutdown)
    }

    async fn handle(&self, progress: &mut Progress, batch: Vec<RecordedEvent>) -> Result<Stopped, SagaError> {
        let mut commands = Vec::new();
        for recorded in &batch {
            let before = progress.last;
            progress.last = Some(recorded.position);
            let Some(event) = decode(recorded)? else { continue };
            let saga_event = event.as_saga_event();
            let Some(order_id) = saga_event.order_id() else {
                continue;
            };
            if matches!(saga_event, SagaEvent::Order(OrderEvent::Placed { .. })) {
                progress.resume_points.insert(order_id, before);
            }
            let state = progress.reserving.remove(&order_id).unwrap_or_default();
            let (state, new) = step(state, saga_event);
            remember(progress, order_id, state);
            let causation = Causation {
                correlation_id: recorded.metadata.correlation_id,
                causation_id: Some(recorded.id),
                user_id: None,
            };
            commands.extend(new.into_iter().map(|command| (command, causation)));
        }
        while !commands.is_empty() {
            if let Some(limit) = self.options.crash_after_commands {
                let room = limit.saturating_sub(progress.commands_run);
                if commands.len() > room {
                    commands.truncate(room);
                    self.execute_all(progress, commands).await?;
                    return Ok(Stopped::Crashed);
                }
            }
            commands = self.execute_all(progress, commands).await?;
        }
        Ok(Stopped::Shutdown)
    }

    /// Executes `commands` and returns the commands that follow from what
    /// they found (a missing product). Commands on different streams run
    /// concurrently; commands on the same stream run in order, one after the
    /// other, so they never race each other for its revision.
    async fn execute_all(
        &self,
        progress: &mut Progress,
        commands: Vec<(SagaCommand, Causation)>,
    ) -> Result<Vec<(SagaCommand, Causation)>, SagaError> {
        progress.commands_run += commands.len();
        let mut by_stream: Vec<(uuid::Uuid, Vec<(SagaCommand, Causation)>)> = Vec::new();
        for (command, causation) in commands {
            let target = target_stream(&command);
            match by_stream.iter_mut().find(|(stream, _)| *stream == target) {
                Some((_, group)) => group.push((command, causation)),
                None => by_stream.push((target, vec![(command, causation)])),
            }
        }
        let results: Vec<_> = futures::stream::iter(by_stream)
            .map(|(_, group)| async move {
                let mut missing = Vec::new();
                for (command, causation) in group {
                    if let Some(event) = self.execute(&command, causation).await? {
                        missing.push((event, causation));
                    }
                }
                Ok::<_, SagaError>(missing)
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut follow_ups = Vec::new();
        for result in results {
            for (event, causation) in result? {
                let SagaEvent::ProductMissing { order_id, product_id } = event else {
                    continue;
                };
                let state = progress.reserving.remove(&order_id).unwrap_or_default();
                let (state, new) = step(state, SagaEvent::ProductMissing { order_id, product_id });
                remember(progress, order_id, state);
                follow_ups.extend(new.into_iter().map(|command| (command, causation)));
            }
        }
        Ok(follow_ups)
    }

    /// Executes one command; a reservation on a product that does not exist
    /// comes back as the saga event that reports it.
    async fn execute(
        &self,
        command: &SagaCommand,
        causation: Causation,
    ) -> Result<Option<SagaEvent<'static>>, SagaError> {
        let now = chrono::Utc::now();
        match command {
            SagaCommand::Reserve {
                product_id,
                order_id,
                quantity,
            } => {
                let reserve = || ProductCommand::Reserve {
                    order_id: *order_id,
                    quantity: *quantity,
                    now,
                };
                match self.products.execute(*product_id, causation, reserve).await {
                    Ok(_) => Ok(None),
                    Err(CommandError::Refused(ProductError::NotFound)) => Ok(Some(SagaEvent::ProductMissing {
                        order_id: *order_id,
                        product_id: *product_id,
                    })),
                    Err(error) => Err(SagaError::Command(error.to_string())),
                }
            }
            SagaCommand::Release { product_id, order_id } => {
                let release = || ProductCommand::Release {
                    order_id: *order_id,
                    now,
                };
                match self.products.execute(*product_id, causation, release).await {
                    Ok(_) | Err(CommandError::Refused(ProductError::NotFound)) => Ok(None),
                    Err(error) => Err(SagaError::Command(error.to_string())),
                }
            }
            SagaCommand::Confirm { order_id, lines } => {
                let confirm = || OrderCommand::Confirm {
                    lines: lines.clone(),
                    now,
                };
                self.decide_order(*order_id, causation, confirm).await
            }
            SagaCommand::Reject { order_id, failures } => {
                let reject = || OrderCommand::Reject {
                    failures: failures.clone(),
                    now,
                };
                self.decide_order(*order_id, causation, reject).await
            }
        }
    }

    async fn decide_order(
        &self,
        order_id: OrderId,
        causation: Causation,
        command: impl Fn() -> OrderCommand,
    ) -> Result<Option<SagaEvent<'static>>, SagaError> {
        match self.orders.execute(order_id, causation, command).await {
            Ok(_) => Ok(None),
            // Decided the other way already (another runner saw a product
            // that this one did not): the order's own stream is the truth,
            // and the saga releases what a rejection leaves held.
            Err(CommandError::Refused(OrderError::InvalidTransition { status, action })) => {
                tracing::info!(%order_id, ?status, action, "order already decided");
                Ok(None)
            }
            Err(error) => Err(SagaError::Command(error.to_string())),
        }
    }
}

/// The id of the stream a command appends to.
fn target_stream(command: &SagaCommand) -> uuid::Uuid {
    match command {
        SagaCommand::Reserve { product_id, .. } | SagaCommand::Release { product_id, .. } => product_id.as_uuid(),
        SagaCommand::Confirm { order_id, .. } | SagaCommand::Reject { order_id, .. } => order_id.as_uuid(),
    }
}

/// Keeps the saga state of orders still being reserved; a confirmed or
/// ended order needs none (a cancellation names its own lines).
fn remember(progress: &mut Progress, order_id: OrderId, state: SagaState) {
    match state {
        SagaState::Reserving(_) => {
            progress.reserving.insert(order_id, state);
        }
        SagaState::Idle | SagaState::Confirmed(_) | SagaState::Ended(_) => {
            progress.resume_points.remove(&order_id);
        }
    }
}

enum Decoded {
    Order(OrderEvent),
    Product(ProductEvent),
}

impl Decoded {
    fn as_saga_event(&self) -> SagaEvent<'_> {
        match self {
            Self::Order(event) => SagaEvent::Order(event),
            Self::Product(event) => SagaEvent::Product(event),
        }
    }
}

/// The domain event of a recorded event; `None` for event types this build
/// does not know, which the saga passes over.
fn decode(recorded: &RecordedEvent) -> Result<Option<Decoded>, SagaError> {
    let (event_type, version, data) = (&recorded.event_type, recorded.metadata.schema_version, &recorded.data);
    let decoded = if OrderEvent::id_in_stream(&recorded.stream).is_some() {
        OrderEvent::decode_known(event_type, version, data).map(|event| event.map(Decoded::Order))
    } else {
        ProductEvent::decode_known(event_type, version, data).map(|event| event.map(Decoded::Product))
    };
    decoded.map_err(|source| SagaError::Decode {
        position: recorded.position,
        source,
    })
}

/// Runs the saga until `shutdown`, restarting it after errors.
pub async fn supervise(saga: OrderSaga, shutdown: CancellationToken) {
    loop {
        match saga.run(shutdown.clone()).await {
            Ok(_) => return,
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
