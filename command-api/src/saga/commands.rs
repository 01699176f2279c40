//! Executing the saga's commands on the aggregates: the commands on one
//! stream in their order, so they never race each other for its revision
//! (a product's decided together and appended at once, an order's one
//! after the other), and different streams at once. Commands handed out
//! later wait for those handed out before them on the same stream
//! (`super::turns`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId};
use domain::order::{Order, OrderCommand, OrderError, OrderEvent};
use domain::order_saga::{SagaCommand, SagaEvent};
use domain::product::{Product, ProductCommand, ProductError, ProductEvent};
use tracing::Instrument;

use super::SagaError;
use super::poison::command_failed;
use super::progress::Caused;
use super::turns::{Turn, Turns};
use crate::aggregates::{Aggregates, Causation, CommandError};

/// How many streams' commands run at once.
const CONCURRENT_STREAMS: usize = 32;

/// What a command found that the log does not record (a missing product),
/// as the saga event that reports it, with the command's causation.
pub(super) type Found = (SagaEvent<'static>, Causation);

pub(super) struct Commands {
    products: Arc<Aggregates<Product>>,
    orders: Arc<Aggregates<Order>>,
    /// How long a confirmed order's payment may take.
    payment_window: TimeDelta,
}

impl Commands {
    pub(super) fn new(
        products: Arc<Aggregates<Product>>,
        orders: Arc<Aggregates<Order>>,
        payment_window: TimeDelta,
    ) -> Self {
        Self {
            products,
            orders,
            payment_window,
        }
    }

    /// Hands out `commands`, grouped by stream, each group taking its turn
    /// on its stream now (after the groups handed out before it there), and
    /// returns their execution: each stream's in their order, different
    /// streams at once, resolving to what they found. On an error the other
    /// streams' commands still finish; the commands waiting for a failed
    /// one on its stream do not run.
    pub(super) fn execute_in_turn(
        &self,
        commands: Vec<Caused>,
        turns: &mut Turns,
    ) -> impl Future<Output = Result<Vec<Found>, SagaError>> + Send + '_ {
        use futures::StreamExt;
        let groups: Vec<(Turn, Vec<Caused>)> = by_stream(commands)
            .into_iter()
            .map(|(stream, group)| (turns.take(stream), group))
            .collect();
        async move {
            let results: Vec<_> = futures::stream::iter(groups)
                .map(|(mut turn, group)| async move {
                    turn.wait()
                        .await
                        .map_err(|failed| SagaError::Command(Box::new(failed)))?;
                    let found = self.execute_in_order(group).await?;
                    turn.finished();
                    Ok::<_, SagaError>(found)
                })
                .buffer_unordered(CONCURRENT_STREAMS)
                .collect()
                .await;
            let mut found = Vec::new();
            for result in results {
                found.extend(result?);
            }
            Ok(found)
        }
    }

    /// Executes one stream's commands in their order: a product's all
    /// together ([`Self::execute_on_product`]), an order's one by one.
    async fn execute_in_order(&self, group: Vec<Caused>) -> Result<Vec<Found>, SagaError> {
        let now = Utc::now();
        let on_product: Option<Vec<(ProductId, ProductCommand)>> =
            group.iter().map(|(command, _)| product_command(command, now)).collect();
        if let Some(commands) = on_product {
            return self.execute_on_product(group, commands).await;
        }
        let mut found = Vec::new();
        for (command, causation) in group {
            let executed = self
                .execute(&command, causation, now)
                .instrument(command_span(&command, causation));
            if let Some(event) = executed.await.map_err(|error| failed(error, &command, causation))? {
                found.push((event, causation));
            }
        }
        Ok(found)
    }

    /// A product stream's commands, decided together and appended at once
    /// ([`Aggregates::execute_each`]): the reservations of many orders on a
    /// hot product share one append instead of queueing one append each.
    /// Each command still gets its own answer: a reservation of a product
    /// that does not exist finds it missing (a release of one holds
    /// nothing), and a refusal the saga does not expect fails the command
    /// that got it. A failure of the whole append is the first command's,
    /// as it was when the commands ran one by one.
    async fn execute_on_product(
        &self,
        group: Vec<Caused>,
        commands: Vec<(ProductId, ProductCommand)>,
    ) -> Result<Vec<Found>, SagaError> {
        let Some(&(product_id, _)) = commands.first() else {
            return Ok(Vec::new());
        };
        let commands: Vec<_> = group
            .iter()
            .zip(commands)
            .map(|((_, causation), (_, command))| (*causation, command))
            .collect();
        let span = tracing::info_span!("saga_product_commands", %product_id, commands = commands.len());
        let answers = self
            .products
            .execute_each(product_id, &commands)
            .instrument(span)
            .await
            .map_err(|error| failed(error, &group[0].0, group[0].1))?;
        let mut found = Vec::new();
        for ((command, causation), answer) in group.into_iter().zip(answers) {
            match (&command, answer) {
                (_, Ok(_)) | (SagaCommand::Release { .. }, Err(ProductError::NotFound)) => {}
                (
                    &SagaCommand::Reserve {
                        product_id, order_id, ..
                    },
                    Err(ProductError::NotFound),
                ) => found.push((SagaEvent::ProductMissing { order_id, product_id }, causation)),
                (_, Err(refused)) => return Err(failed(CommandError::Refused(refused), &command, causation)),
            }
        }
        Ok(found)
    }

    /// Executes an order's command.
    async fn execute(
        &self,
        command: &SagaCommand,
        causation: Causation,
        now: DateTime<Utc>,
    ) -> Result<Option<SagaEvent<'static>>, CommandError<OrderError>> {
        match command {
            SagaCommand::Confirm { order_id, lines } => {
                let confirm = || OrderCommand::Confirm {
                    lines: lines.clone(),
                    now,
                    payment_due: now + self.payment_window,
                };
                self.decide_order(*order_id, causation, confirm).await
            }
            SagaCommand::Refuse { order_id, refusal } => {
                let refuse = || OrderCommand::Refuse { refusal: *refusal, now };
                self.decide_order(*order_id, causation, refuse).await
            }
            SagaCommand::Expire { order_id } => {
                let expire = || OrderCommand::Expire {
                    now,
                    window: self.payment_window,
                };
                self.decide_order(*order_id, causation, expire).await
            }
            SagaCommand::Reject { order_id, failures } => {
                let reject = || OrderCommand::Reject {
                    failures: failures.clone(),
                    now,
                };
                self.decide_order(*order_id, causation, reject).await
            }
            // Grouped by product stream before: `execute_on_product`.
            SagaCommand::Reserve { .. } | SagaCommand::Release { .. } => Ok(None),
        }
    }

    async fn decide_order(
        &self,
        order_id: OrderId,
        causation: Causation,
        command: impl Fn() -> OrderCommand,
    ) -> Result<Option<SagaEvent<'static>>, CommandError<OrderError>> {
        match self.orders.execute(order_id, causation, command).await {
            Ok(_) => Ok(None),
            // Decided the other way already (another runner saw a product
            // that this one did not): the order's own stream is the truth,
            // and the saga releases what a rejection leaves held.
            Err(CommandError::Refused(OrderError::InvalidTransition { status, action, .. })) => {
                tracing::info!(%order_id, ?status, action, "order already decided");
                Ok(None)
            }
            // Only when this runner's clock stepped back since it took the
            // order as due: the order is no longer scheduled here, and
            // expires at the next restart (or on another replica), unless
            // it is paid first.
            Err(CommandError::Refused(OrderError::NotDue { due })) => {
                tracing::info!(%order_id, %due, "order payment not due yet");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

/// `command`'s failure with `error`, for good or for now
/// ([`command_failed`]).
fn failed(
    error: impl std::error::Error + Send + Sync + 'static,
    command: &SagaCommand,
    causation: Causation,
) -> SagaError {
    command_failed(Box::new(error), order_of(command), causation.causation_id)
}

/// The product and the product command a saga command is; `None` for an
/// order's command.
fn product_command(command: &SagaCommand, now: DateTime<Utc>) -> Option<(ProductId, ProductCommand)> {
    match *command {
        SagaCommand::Reserve {
            product_id,
            order_id,
            quantity,
        } => Some((
            product_id,
            ProductCommand::Reserve {
                order_id,
                quantity,
                now,
            },
        )),
        SagaCommand::Release { product_id, order_id } => Some((product_id, ProductCommand::Release { order_id, now })),
        SagaCommand::Confirm { .. }
        | SagaCommand::Reject { .. }
        | SagaCommand::Refuse { .. }
        | SagaCommand::Expire { .. } => None,
    }
}

/// The span `command` runs in: what every line logged meanwhile says of
/// it, with the correlation and trace ids it goes on in.
fn command_span(command: &SagaCommand, causation: Causation) -> tracing::Span {
    tracing::info_span!(
        "saga_command",
        order_id = %order_of(command),
        correlation_id = %causation.correlation_id,
        trace_id = causation.trace_id.map(tracing::field::display),
    )
}

/// `commands` grouped by the stream each appends to, in their order within
/// a stream.
fn by_stream(commands: Vec<Caused>) -> Vec<(String, Vec<Caused>)> {
    let mut groups: Vec<(String, Vec<Caused>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for caused in commands {
        let stream = target_stream(&caused.0);
        let group = match index.get(&stream) {
            Some(&group) => group,
            None => {
                index.insert(stream.clone(), groups.len());
                groups.push((stream, Vec::new()));
                groups.len() - 1
            }
        };
        groups[group].1.push(caused);
    }
    groups
}

/// The order a command is for.
fn order_of(command: &SagaCommand) -> OrderId {
    match command {
        SagaCommand::Reserve { order_id, .. }
        | SagaCommand::Release { order_id, .. }
        | SagaCommand::Confirm { order_id, .. }
        | SagaCommand::Reject { order_id, .. }
        | SagaCommand::Refuse { order_id, .. }
        | SagaCommand::Expire { order_id } => *order_id,
    }
}

/// The stream a command appends to.
fn target_stream(command: &SagaCommand) -> String {
    match command {
        SagaCommand::Reserve { product_id, .. } | SagaCommand::Release { product_id, .. } => {
            ProductEvent::stream_name(product_id)
        }
        SagaCommand::Confirm { order_id, .. }
        | SagaCommand::Reject { order_id, .. }
        | SagaCommand::Refuse { order_id, .. }
        | SagaCommand::Expire { order_id } => OrderEvent::stream_name(order_id),
    }
}
