//! Executing the saga's commands on the aggregates: the commands on one
//! stream one after the other, so they never race each other for its
//! revision, and different streams at once.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId};
use domain::order::{Order, OrderCommand, OrderError, OrderEvent};
use domain::order_saga::{SagaCommand, SagaEvent};
use domain::product::{Product, ProductCommand, ProductError, ProductEvent};

use super::SagaError;
use super::poison::command_failed;
use super::progress::Caused;
use crate::aggregates::{Aggregates, Causation, CommandError};

/// How many streams' commands run at once.
const CONCURRENT_STREAMS: usize = 32;

/// What a command found that the log does not record (a missing product),
/// as the saga event that reports it, with the command's causation.
type Found = (SagaEvent<'static>, Causation);

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

    /// Executes `commands`, each stream's in their order, and returns what
    /// they found. On an error the other streams' commands still finish.
    pub(super) async fn execute_all(&self, commands: Vec<Caused>) -> Result<Vec<Found>, SagaError> {
        use futures::StreamExt;
        let results: Vec<_> = futures::stream::iter(by_stream(commands))
            .map(|group| self.execute_in_order(group))
            .buffer_unordered(CONCURRENT_STREAMS)
            .collect()
            .await;
        let mut found = Vec::new();
        for result in results {
            found.extend(result?);
        }
        Ok(found)
    }

    async fn execute_in_order(&self, group: Vec<Caused>) -> Result<Vec<Found>, SagaError> {
        let mut found = Vec::new();
        for (command, causation) in group {
            let executed = self.execute(&command, causation).await.map_err(|error| match error {
                SagaError::Command(source) => command_failed(source, order_of(&command), causation.causation_id),
                other => other,
            });
            if let Some(event) = executed? {
                found.push((event, causation));
            }
        }
        Ok(found)
    }

    async fn execute(
        &self,
        command: &SagaCommand,
        causation: Causation,
    ) -> Result<Option<SagaEvent<'static>>, SagaError> {
        let now = Utc::now();
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
                    Err(error) => Err(failed(error)),
                }
            }
            SagaCommand::Release { product_id, order_id } => self.release(*product_id, *order_id, causation, now).await,
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
        }
    }

    /// A product that does not exist holds nothing to release.
    async fn release(
        &self,
        product_id: ProductId,
        order_id: OrderId,
        causation: Causation,
        now: DateTime<Utc>,
    ) -> Result<Option<SagaEvent<'static>>, SagaError> {
        let release = || ProductCommand::Release { order_id, now };
        match self.products.execute(product_id, causation, release).await {
            Ok(_) | Err(CommandError::Refused(ProductError::NotFound)) => Ok(None),
            Err(error) => Err(failed(error)),
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
            Err(error) => Err(failed(error)),
        }
    }
}

fn failed(error: impl std::error::Error + Send + Sync + 'static) -> SagaError {
    SagaError::Command(Box::new(error))
}

/// `commands` grouped by the stream each appends to, in their order within
/// a stream.
fn by_stream(commands: Vec<Caused>) -> Vec<Vec<Caused>> {
    let mut groups: Vec<Vec<Caused>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for caused in commands {
        let next = groups.len();
        let group = *index.entry(target_stream(&caused.0)).or_insert(next);
        if group == next {
            groups.push(Vec::new());
        }
        groups[group].push(caused);
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
