use super::{
    Customer, LineFailure, OrderEvent, OrderLines, OrderStatus, PaymentStatus, PricedLine, ReservedLine,
    ShippingAddress,
};
use crate::Timestamp;
use crate::decider::Decider;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::text::Reason;

/// The order aggregate.
pub struct Order;

// Commands live for one decision; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Placing the same order again (same id, same content) decides
    /// nothing, so a retried request has its effect once.
    Place(PlaceOrder),
    /// From the saga: every line is reserved at these prices.
    Confirm { lines: Vec<ReservedLine>, now: Timestamp },
    /// From the saga: these products could not be reserved.
    Reject { failures: Vec<LineFailure>, now: Timestamp },
    Cancel {
        requested_by: UserId,
        reason: Reason,
        now: Timestamp,
    },
}

/// The lifecycle of an order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OrderState {
    #[default]
    NotPlaced,
    /// Waiting for the saga to reserve stock.
    Placed(PlacedOrder),
    Confirmed {
        order: PlacedOrder,
        lines: Vec<PricedLine>,
        total: Money,
    },
    Rejected {
        order: PlacedOrder,
        failures: Vec<LineFailure>,
    },
    Cancelled {
        order: PlacedOrder,
        lines: Vec<PricedLine>,
        total: Money,
    },
}

/// What a customer asks for when placing an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub order: PlacedOrder,
    pub now: Timestamp,
}

impl OrderCommand {
    /// What the command would do, for refusals: "an order cannot be
    /// {action} while {status}".
    fn action(&self) -> &'static str {
        match self {
            Self::Place(_) => "placed",
            Self::Confirm { .. } => "confirmed",
            Self::Reject { .. } => "rejected",
            Self::Cancel { .. } => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub lines: OrderLines,
    pub customer: Customer,
    pub shipping: ShippingAddress,
}

impl OrderState {
    /// `None` before the order is placed.
    pub fn status(&self) -> Option<(OrderStatus, PaymentStatus)> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(_) => Some((OrderStatus::Pending, PaymentStatus::Pending)),
            Self::Confirmed { .. } => Some((OrderStatus::Confirmed, PaymentStatus::Arranged)),
            Self::Rejected { .. } => Some((OrderStatus::Rejected, PaymentStatus::Void)),
            Self::Cancelled { .. } => Some((OrderStatus::Cancelled, PaymentStatus::Refunded)),
        }
    }

    pub fn placed(&self) -> Option<&PlacedOrder> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(order)
            | Self::Confirmed { order, .. }
            | Self::Rejected { order, .. }
            | Self::Cancelled { order, .. } => Some(order),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("no such order")]
    NotFound,
    /// Also the answer to somebody else's order: its existence is not revealed.
    #[error("no such order for this customer")]
    NotOwner,
    #[error("an order with this id exists with other content")]
    IdTaken,
    #[error("an order cannot be {action} while {status:?}")]
    InvalidTransition { status: OrderStatus, action: &'static str },
    #[error("the reserved lines do not match the ordered lines")]
    ReservationMismatch,
    #[error("a rejection names at least one failed line")]
    NoFailures,
    #[error("the order total overflows")]
    TotalOverflow,
}

impl Decider for Order {
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(state: &OrderState, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand as C;
        use OrderState as S;
        match (state, command) {
            (state, C::Place(placed)) => place(state.placed(), placed),
            (S::NotPlaced, _) => Err(OrderError::NotFound),
            (S::Placed(order), C::Confirm { lines, now }) => confirm(order, lines, now),
            (S::Confirmed { .. }, C::Confirm { .. }) => Ok(vec![]),
            (S::Placed(order), C::Reject { failures, now }) => reject(order, failures, now),
            (S::Rejected { .. }, C::Reject { .. }) => Ok(vec![]),
            (state, C::Cancel { requested_by, .. })
                if state.placed().is_some_and(|order| order.customer_id != requested_by) =>
            {
                Err(OrderError::NotOwner)
            }
            (S::Confirmed { order, .. }, C::Cancel { reason, now, .. }) => Ok(cancel(order, reason, now)),
            (S::Cancelled { .. }, C::Cancel { .. }) => Ok(vec![]),
            (state, command) => Err(refusal(state, &command)),
        }
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        match (state, event) {
            (
                OrderState::NotPlaced,
                OrderEvent::Placed {
                    order_id,
                    customer_id,
                    lines,
                    customer,
                    shipping,
                    ..
                },
            ) => OrderState::Placed(PlacedOrder {
                order_id: *order_id,
                customer_id: *customer_id,
                lines: lines.clone(),
                customer: customer.clone(),
                shipping: shipping.clone(),
            }),
            (OrderState::Placed(order), OrderEvent::Confirmed { lines, total, .. }) => OrderState::Confirmed {
                order,
                lines: lines.clone(),
                total: *total,
            },
            (OrderState::Placed(order), OrderEvent::Rejected { failures, .. }) => OrderState::Rejected {
                order,
                failures: failures.clone(),
            },
            (OrderState::Confirmed { order, lines, total }, OrderEvent::Cancelled { .. }) => {
                OrderState::Cancelled { order, lines, total }
            }
            (state, _) => state,
        }
    }
}

fn place(existing: Option<&PlacedOrder>, PlaceOrder { order, now }: PlaceOrder) -> Result<Vec<OrderEvent>, OrderError> {
    match existing {
        None => Ok(vec![OrderEvent::Placed {
            order_id: order.order_id,
            customer_id: order.customer_id,
            lines: order.lines,
            customer: order.customer,
            shipping: order.shipping,
            at: now,
        }]),
        Some(existing) if *existing == order => Ok(vec![]),
        Some(_) => Err(OrderError::IdTaken),
    }
}

/// Why `command` cannot apply to `state`.
fn refusal(state: &OrderState, command: &OrderCommand) -> OrderError {
    match state.status() {
        Some((status, _)) => OrderError::InvalidTransition {
            status,
            action: command.action(),
        },
        None => OrderError::NotFound,
    }
}

fn confirm(order: &PlacedOrder, reserved: Vec<ReservedLine>, now: Timestamp) -> Result<Vec<OrderEvent>, OrderError> {
    let (lines, total) = price(&order.lines, reserved)?;
    Ok(vec![OrderEvent::Confirmed {
        order_id: order.order_id,
        customer_id: order.customer_id,
        lines,
        total,
        at: now,
    }])
}

fn reject(order: &PlacedOrder, failures: Vec<LineFailure>, now: Timestamp) -> Result<Vec<OrderEvent>, OrderError> {
    if failures.is_empty() {
        return Err(OrderError::NoFailures);
    }
    Ok(vec![OrderEvent::Rejected {
        order_id: order.order_id,
        customer_id: order.customer_id,
        failures,
        at: now,
    }])
}

fn cancel(order: &PlacedOrder, reason: Reason, now: Timestamp) -> Vec<OrderEvent> {
    vec![OrderEvent::Cancelled {
        order_id: order.order_id,
        customer_id: order.customer_id,
        lines: order.lines.clone(),
        reason,
        at: now,
    }]
}

/// Prices the ordered lines from their reservations, in the order's line
/// order. Every ordered line needs exactly one reservation of its quantity.
fn price(ordered: &OrderLines, reserved: Vec<ReservedLine>) -> Result<(Vec<PricedLine>, Money), OrderError> {
    if reserved.len() != ordered.as_slice().len() {
        return Err(OrderError::ReservationMismatch);
    }
    let mut priced = Vec::with_capacity(reserved.len());
    let mut total = Money::ZERO;
    for line in ordered.as_slice() {
        let reservation = reserved
            .iter()
            .find(|r| r.product_id == line.product_id && r.quantity == line.quantity)
            .ok_or(OrderError::ReservationMismatch)?;
        let line_total = reservation
            .unit_price
            .money()
            .checked_mul(line.quantity.get())
            .ok_or(OrderError::TotalOverflow)?;
        total = total.checked_add(line_total).ok_or(OrderError::TotalOverflow)?;
        priced.push(PricedLine {
            product_id: reservation.product_id,
            sku: reservation.sku.clone(),
            name: reservation.name.clone(),
            quantity: reservation.quantity,
            unit_price: reservation.unit_price,
            line_total,
        });
    }
    Ok((priced, total))
}

#[cfg(test)]
mod tests;
