//! Settling an order's payment and closing the order: what an
//! administrator or the payment provider's webhook asks for once the order
//! is confirmed. Who may ask is the HTTP edge's concern; the order
//! aggregate decides whether the order may be paid or closed now.

use std::sync::Arc;

use domain::ids::OrderId;
use domain::money::Money;
use domain::order::{Order, OrderCommand, OrderError, OrderState, PaymentReference};
use event_store::Position;

use crate::aggregates::{Aggregates, Causation, CommandError};
use crate::orders::OrdersError;

/// An order after a settle or a close, as the answer shows it.
pub struct Changed {
    pub state: OrderState,
    pub position: Position,
}

pub struct Settlement {
    orders: Arc<Aggregates<Order>>,
}

impl Settlement {
    pub fn new(orders: Arc<Aggregates<Order>>) -> Self {
        Self { orders }
    }

    /// Records the payment `reference` of `amount` (a decimal such as
    /// `"43.47"`) for the order. The same reference again changes nothing
    /// and answers the order as it is.
    pub async fn settle(
        &self,
        order_id: OrderId,
        reference: &str,
        amount: &str,
        causation: Causation,
    ) -> Result<Changed, OrdersError> {
        let reference = PaymentReference::parse(reference)?;
        let amount = Money::parse_decimal("amount", amount)?;
        let now = chrono::Utc::now();
        let decided = self
            .orders
            .execute(order_id, causation, || OrderCommand::Settle {
                reference: reference.clone(),
                amount,
                now,
            })
            .await?;
        changed(decided.state, decided.position)
    }

    /// Closes the settled order: fulfilled. A closed order again changes
    /// nothing.
    pub async fn close(&self, order_id: OrderId, causation: Causation) -> Result<Changed, OrdersError> {
        let now = chrono::Utc::now();
        let decided = self
            .orders
            .execute(order_id, causation, || OrderCommand::Close { now })
            .await?;
        changed(decided.state, decided.position)
    }
}

/// The aggregate refuses an order that was never placed, so its stream is
/// not empty here.
fn changed(state: OrderState, position: Option<Position>) -> Result<Changed, OrdersError> {
    let position = position.ok_or(CommandError::Refused(OrderError::NotFound))?;
    Ok(Changed { state, position })
}
