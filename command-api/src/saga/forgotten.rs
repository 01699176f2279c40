//! Reservations for orders the runner does not remember. It keeps saga
//! state only while an order is being reserved, and another runner (every
//! command API replica runs one) or a restart from an older checkpoint can
//! replay an order and reserve a product that was missing when it was
//! rejected. Such a reservation lands after the rejection, when no runner
//! remembers the order; the order's own stream says what follows: the saga
//! releases a reservation for an order that is no longer pending.

use std::sync::Arc;

use domain::order::Order;
use domain::order_saga::{self, SagaEvent, SagaState};
use domain::product::ProductEvent;

use super::SagaError;
use super::poison::command_failed;
use super::progress::Caused;
use crate::aggregates::{Aggregates, Causation};

pub(super) struct Forgotten {
    orders: Arc<Aggregates<Order>>,
}

impl Forgotten {
    pub(super) fn new(orders: Arc<Aggregates<Order>>) -> Self {
        Self { orders }
    }

    /// The commands that follow `reservations`, each decided from the
    /// saga state its order's stream implies now. The stream is read after
    /// the reservation was seen in the log, so it holds every decision
    /// that came before it. A stream this build cannot read fails as
    /// [`SagaError::Refused`], so the reservation is parked, not retried for
    /// ever.
    pub(super) async fn follow_up(
        &self,
        reservations: Vec<(ProductEvent, Causation)>,
    ) -> Result<Vec<Caused>, SagaError> {
        let mut commands = Vec::new();
        for (reservation, causation) in reservations {
            let event = SagaEvent::Product(&reservation);
            let Some(order_id) = event.order_id() else { continue };
            let order = self
                .orders
                .load(order_id)
                .await
                .map_err(|error| command_failed(Box::new(error), order_id, causation.causation_id))?;
            let (_, follow) = order_saga::step(SagaState::implied_by(&order.state), event);
            if !follow.is_empty() {
                tracing::info!(
                    %order_id,
                    correlation_id = %causation.correlation_id,
                    trace_id = causation.trace_id.map(tracing::field::display),
                    "releasing a reservation that arrived after its order ended"
                );
            }
            commands.extend(follow.into_iter().map(|command| (command, causation)));
        }
        Ok(commands)
    }
}
