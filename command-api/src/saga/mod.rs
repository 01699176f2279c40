//! The order saga's runner: feeds order and product events to the pure saga
//! in `domain::order_saga` and executes the commands it returns.
//!
//! It follows the log from its checkpoint. Every command is idempotent in
//! its aggregate, so replaying events after a crash repeats commands
//! harmlessly, and two runners at once cannot apply anything twice. The
//! checkpoint it saves is the position before the oldest order still being
//! reserved or waiting for its payment, so a restart replays every
//! unfinished order from its start and rebuilds each customer's count of
//! waiting orders (`MAX_UNSETTLED_ORDERS`) and their due times from the
//! log; it also saves how far every command was executed, so the replay
//! executes nothing twice.
//!
//! It executes a batch's commands while it reads and steps the next few
//! (`pipeline`): an order's rounds (reserve, then confirm) overlap other
//! orders' instead of queueing behind them. Commands on one stream still
//! run in the order asked for, and the checkpoint is saved only once
//! nothing is in flight.
//!
//! Besides the log, the loop wakes when the next payment falls due and
//! expires the orders due (`ORDER_PAYMENT_WINDOW`). Two runners may both
//! ask: the order's decider turns an expiry of an order no longer confirmed
//! into nothing, and the append's expected revision makes one of two
//! concurrent expiries decide again on the cancelled order, so an order is
//! cancelled, and its stock released, once.
//!
//! - this module: the run loop, batches from the log and when to save the
//!   checkpoint;
//! - `decode`: recorded events to the domain events the saga reads;
//! - `progress`: stepping the pure saga order by order, the ledger of
//!   waiting orders, and where a restart must resume;
//! - `pipeline`: the commands of a batch executing while the next batch is
//!   read, and what keeps that as safe as one batch at a time;
//! - `commands`: executing the commands, grouped by the stream they append
//!   to;
//! - `turns`: the commands of later batches on a stream waiting for the
//!   earlier ones;
//! - `forgotten`: reservations for orders the runner does not remember,
//!   decided from the order's own stream (released if it ended);
//! - `checkpoint`: where a restart resumes, kept in the event store;
//! - `poison`: which failures an event causes for good (poison) and which
//!   are outages, and the event at fault;
//! - `parked`: the events parked after `POISON_ATTEMPTS` failures, kept in
//!   the event store (`saga-parked`) so every replica sees one list; the
//!   order such an event concerns is held back until it is resolved;
//! - `redrive`: picking a held-back order up again once resolved;
//! - `health`: whether the saga is stalled or lagging, for readiness;
//! - `admin`: listing, retrying and skipping parked events.

pub mod admin;
mod checkpoint;
mod commands;
mod decode;
mod forgotten;
pub mod health;
pub mod parked;
mod pipeline;
mod poison;
mod progress;
mod redrive;
mod turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::event::DomainEvent;
use domain::ids::OrderId;
use domain::order::{Order, OrderEvent};
use domain::order_saga::{SagaCommand, Unsettled};
use domain::product::{Product, ProductEvent};
use event_store::{EventStore, Position, RecordedEvent, StoreError, StreamFilter};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::checkpoint::Resume;
pub use self::checkpoint::STREAM as CHECKPOINT_STREAM;
use self::commands::Commands;
use self::decode::{Decoded, decode};
use self::forgotten::Forgotten;
use self::health::{EndGuard, SagaHealth};
pub use self::parked::STREAM as PARKED_STREAM;
use self::parked::{Change, ParkedEvent, ParkedList};
use self::pipeline::Pipeline;
pub use self::poison::Culprit;
use self::poison::{Culprits, concerned_order};
use self::progress::{Caused, Progress};
use crate::aggregates::{Aggregates, Causation};

/// The subscriber name of the saga in parked events, metrics and readiness.
pub const SUBSCRIBER: &str = "saga";

#[derive(Debug, Clone)]
pub struct SagaOptions {
    /// How often progress is saved while events flow. Each save first
    /// waits until no command is in flight, so zero executes one batch at
    /// a time.
    pub checkpoint_every: Duration,
    /// The most events handled together.
    pub batch: usize,
    /// How many times an event that fails for good is tried before it is
    /// parked (`POISON_ATTEMPTS`, at least 1).
    pub poison_attempts: u32,
    /// The pause before the saga restarts after an error.
    pub retry_pause: Duration,
    /// How long it may stay behind the log head continuously before
    /// readiness reports it lagging (`SUBSCRIBER_LAG_LIMIT_MS`).
    pub lag_limit: Duration,
    /// How long a confirmed order waits for its payment before the saga
    /// cancels it (`ORDER_PAYMENT_WINDOW`).
    pub payment_window: chrono::TimeDelta,
    /// The most orders a customer may have waiting for a decision or a
    /// payment; the saga refuses the next (`MAX_UNSETTLED_ORDERS`).
    pub max_unsettled: u32,
}

impl Default for SagaOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(1),
            batch: 256,
            poison_attempts: 5,
            retry_pause: Duration::from_secs(1),
            lag_limit: Duration::from_secs(30),
            payment_window: chrono::TimeDelta::minutes(30),
            max_unsettled: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
    /// An event that fails for good (it cannot be decoded, or a command it
    /// causes is refused): tried `poison_attempts` times, then parked.
    #[error("the event at {} in {} ({}) cannot be handled: {error}", culprit.position, culprit.stream, culprit.event_type)]
    Poison { culprit: Box<Culprit>, error: String },
    /// A command refused for good, before its causing event is known.
    #[error("a saga command for order {order_id} was refused: {source}")]
    Refused {
        order_id: OrderId,
        causation_id: Option<Uuid>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A command that may succeed later (the store unavailable, contention).
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
    health: Arc<SagaHealth>,
    /// Names this process in the events it parks.
    instance: String,
}

/// The checkpoint last saved, and when.
struct Saved {
    resume: Resume,
    at: Instant,
}

impl SagaOptions {
    /// An empty ledger of the orders waiting, with these limits.
    fn ledger(&self) -> Unsettled {
        Unsettled::new(self.max_unsettled, self.payment_window)
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
            forgotten: Forgotten::new(Arc::clone(&orders)),
            commands: Commands::new(products, orders, options.payment_window),
            health: SagaHealth::new(options.lag_limit),
            options,
            instance: instance_name(),
        }
    }

    /// Reports to `health` (which readiness reads) instead of its own.
    pub fn with_health(mut self, health: Arc<SagaHealth>) -> Self {
        self.health = health;
        self
    }

    pub fn health(&self) -> Arc<SagaHealth> {
        Arc::clone(&self.health)
    }

    /// Runs until `shutdown` (then saves where to resume) or an error. After
    /// an error it saves nothing, as after a crash: a restart resumes from
    /// the last checkpoint saved and replays what came after it.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), SagaError> {
        let resume = checkpoint::load(self.store.as_ref()).await?;
        let mut list = parked::load_at(self.store.as_ref(), resume.after).await?;
        count_parked(&list);
        tracing::info!(resume = ?resume.after.map(|p| p.to_string()), handled = ?resume.handled.map(|p| p.to_string()), "order saga started");
        self.health.started(resume.after);
        let mut progress = Progress::resuming_after(resume.after, resume.handled, self.options.ledger());
        let mut saved = Saved {
            resume,
            at: Instant::now(),
        };
        let mut events = self.store.subscribe_all(resume.after, saga_filter(true));
        let mut pipeline = Pipeline::new(&self.commands, &self.forgotten);
        loop {
            let due = until_due(progress.next_due());
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(due) => {}
                next = events.next_batch(self.options.batch), if !pipeline.is_full() => {
                    let batch = next.ok_or(SagaError::SubscriptionEnded)??;
                    self.handle(&mut pipeline, &mut progress, &mut list, &batch).await?;
                }
                Some(executed) = pipeline.next() => pipeline.finish(executed, &mut progress)?,
            }
            // Every time round, not only when the sleep wins: under a steady
            // flow of events it may never be the branch taken.
            self.expire_due(&mut pipeline, &mut progress).await?;
            if saved.at.elapsed() >= self.options.checkpoint_every {
                pipeline.drain(&mut progress).await?;
                self.save(&mut saved, &progress).await?;
            }
            if let Some(handled) = pipeline.handled() {
                self.health.handled(Some(handled));
            }
        }
        pipeline.drain(&mut progress).await?;
        self.save(&mut saved, &progress).await
    }

    /// Cancels the orders whose payment is due now, each on its own
    /// correlation; the cancellations come back through the log, and their
    /// stock is released as for any cancellation.
    async fn expire_due(&self, pipeline: &mut Pipeline<'_>, progress: &mut Progress) -> Result<(), SagaError> {
        let due = progress.take_due(Utc::now());
        if due.is_empty() {
            return Ok(());
        }
        tracing::info!(orders = due.len(), "expiring orders whose payment window passed");
        let commands = due
            .into_iter()
            .map(|order_id| {
                let causation = Causation::request(Uuid::now_v7(), None);
                (SagaCommand::Expire { order_id }, causation)
            })
            .collect();
        let through = progress.last();
        pipeline.submit(progress, Culprits::default(), commands, through).await
    }

    /// Steps the saga through `batch` and hands out the commands that
    /// follow (with those for reservations of orders it does not remember,
    /// as their streams say) to execute while the next batch is read.
    /// Events parked, skipped or of an order held back are passed over; a
    /// failure for good names the event at fault. A record of the parked
    /// stream waits until nothing is in flight: picking an order up again
    /// reads its stream.
    async fn handle(
        &self,
        pipeline: &mut Pipeline<'_>,
        progress: &mut Progress,
        list: &mut ParkedList,
        batch: &[RecordedEvent],
    ) -> Result<(), SagaError> {
        if batch.iter().any(|recorded| recorded.stream == PARKED_STREAM) {
            pipeline.drain(progress).await?;
        }
        let mut culprits = Culprits::default();
        let mut commands = Vec::new();
        for recorded in batch {
            log_read(recorded);
            let handled_before = progress.handled_before(recorded.position);
            let caused = if recorded.stream == PARKED_STREAM {
                let caused = self.take_record(progress, list, recorded, &mut culprits).await?;
                progress.pass(recorded.position);
                caused
            } else {
                let order = concerned_order(recorded);
                if list.passes_over(recorded.position) || order.is_some_and(|order| list.holds(order)) {
                    progress.pass(recorded.position);
                    continue;
                }
                let (after, from_start) = progress.replay_point(recorded, order);
                culprits.note(recorded, order, after, from_start);
                let event = decode(recorded).map_err(|error| culprits.poison(recorded.id, &error))?;
                progress.observe(recorded, event.as_ref().map(Decoded::as_saga_event))
            };
            if handled_before {
                progress.hush(caused);
            } else {
                commands.extend(caused);
            }
        }
        commands.extend(progress.take_deferred());
        let through = progress.last();
        pipeline.submit(progress, culprits, commands, through).await
    }

    /// Folds a record of the parked stream in: an order held back from now
    /// on is forgotten; one released is picked up again.
    async fn take_record(
        &self,
        progress: &mut Progress,
        list: &mut ParkedList,
        recorded: &RecordedEvent,
        culprits: &mut Culprits,
    ) -> Result<Vec<Caused>, SagaError> {
        let change = list.apply(recorded);
        count_parked(list);
        match change {
            Change::Parked(parked) => {
                if let Some(order) = parked.order_id {
                    progress.forget(order);
                }
                Ok(Vec::new())
            }
            Change::Resolved(parked) if parked.order_id.is_some_and(|order| !list.holds(order)) => {
                redrive::redrive(
                    self.store.as_ref(),
                    progress,
                    &*list,
                    &parked,
                    recorded.position,
                    culprits,
                )
                .await
            }
            Change::Resolved(_) | Change::Nothing => Ok(Vec::new()),
        }
    }

    /// Parks `culprit`, which failed `attempts` times, last with `error`.
    async fn park(&self, culprit: &Culprit, error: &str, attempts: u32) -> Result<(), StoreError> {
        let parked = ParkedEvent {
            subscriber: SUBSCRIBER.to_owned(),
            position: culprit.position,
            stream: culprit.stream.clone(),
            revision: culprit.revision,
            event_type: culprit.event_type.clone(),
            order_id: culprit.order_id,
            error: error.to_owned(),
            instance: self.instance.clone(),
            attempts,
            parked_at: chrono::Utc::now(),
            replay_after: culprit.replay_after,
            replay_from_start: culprit.replay_from_start,
        };
        if parked::park(self.store.as_ref(), &parked).await? {
            metrics::counter!("parked_events_total", "subscriber" => SUBSCRIBER).increment(1);
            tracing::warn!(position = %culprit.position, stream = %culprit.stream, order = ?culprit.order_id, %error, attempts, "order saga parked an event it cannot handle");
        }
        Ok(())
    }

    /// Saves where `progress` would resume, and how far it handled,
    /// unless that is saved already.
    async fn save(&self, saved: &mut Saved, progress: &Progress) -> Result<(), SagaError> {
        let resume = Resume {
            after: progress.resume_point(),
            handled: progress.handled(),
        };
        if resume != saved.resume {
            checkpoint::save(self.store.as_ref(), resume).await?;
            *saved = Saved {
                resume,
                at: Instant::now(),
            };
        }
        Ok(())
    }
}

/// Runs the saga until `shutdown`, restarting it after errors. An event
/// that fails for good is parked after `poison_attempts` failures in a row,
/// and the saga goes on past it; outages are retried for ever.
pub async fn supervise(saga: OrderSaga, shutdown: CancellationToken) {
    let _ended = EndGuard(saga.health());
    let mut strikes: Option<(Position, u32)> = None;
    loop {
        let error = match saga.run(shutdown.clone()).await {
            Ok(()) => return,
            Err(error) => error,
        };
        if let SagaError::Poison { culprit, error: why } = &error {
            let attempts = match strikes {
                Some((at, n)) if at == culprit.position => n.saturating_add(1),
                _ => 1,
            };
            strikes = Some((culprit.position, attempts));
            saga.health.stalled(culprit.position, attempts, why.clone());
            if attempts >= saga.options.poison_attempts.max(1) {
                match saga.park(culprit, why, attempts).await {
                    Ok(()) => {
                        strikes = None;
                        saga.health.unstalled();
                        continue;
                    }
                    Err(park) => tracing::error!(error = %park, "order saga could not park an event; retrying"),
                }
            }
        }
        tracing::error!(%error, "order saga stopped; restarting from its checkpoint");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(saga.options.retry_pause) => {}
        }
    }
}

/// The streams the saga follows: orders and products, and (for the run
/// loop) its parked events.
pub(crate) fn saga_filter(with_parked: bool) -> StreamFilter {
    let mut prefixes = vec![OrderEvent::stream_prefix(), ProductEvent::stream_prefix()];
    if with_parked {
        prefixes.push(PARKED_STREAM.to_owned());
    }
    StreamFilter::prefixes(prefixes)
}

/// Logs, at debug, that the saga reads `recorded`, with the correlation
/// and trace ids that lead back to the request it comes from.
fn log_read(recorded: &RecordedEvent) {
    tracing::debug!(
        position = %recorded.position,
        stream = %recorded.stream,
        event_type = %recorded.event_type,
        correlation_id = %recorded.metadata.correlation_id,
        trace_id = recorded.metadata.trace_id.map(tracing::field::display),
        "order saga reads an event"
    );
}

/// Sets the `parked_events` gauge from `list`.
pub(crate) fn count_parked(list: &ParkedList) {
    #[allow(clippy::cast_precision_loss)] // a count far below 2^52
    let parked = list.parked().count() as f64;
    metrics::gauge!("parked_events", "subscriber" => SUBSCRIBER).set(parked);
}

/// How long until `due`: at once if it passed, never if there is none.
fn until_due(due: Option<chrono::DateTime<Utc>>) -> Duration {
    const NEVER: Duration = Duration::from_secs(86_400 * 365);
    due.map_or(NEVER, |due| (due - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// This process in parked events: its host and process id.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
