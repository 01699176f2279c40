use chrono::TimeDelta;

use super::{
    Customer, LineFailure, OrderEvent, OrderLines, OrderStatus, PaymentReference, PaymentStatus, PricedLine, Refusal,
    ReservedLine, ShippingAddress,
};
use crate::Timestamp;
use crate::decider::Decider;
use crate::ids::{OrderId, UserId};
use crate::money::Money;
use crate::text::Reason;

/// The order aggregate.
///
/// ```text
///                    Place
///                      │
///                      ▼
///                   pending ──Reject──▶ rejected (payment void)
///                      │     ──Refuse──▶ rejected (payment void, nothing reserved)
///                   Confirm
///                      ▼
///   ┌──────────── confirmed ──Cancel / Expire──▶ cancelled (payment cancelled)
///   │          (payment arranged,
///   │           due by payment_due)
///   │                  │
///   │               Settle (reference, amount = total)
///   │                  ▼
///   │          confirmed (payment settled) ──Cancel──▶ cancelled (payment refunded)
///   │                  │
///   │                Close
///   │                  ▼
///   └──────────▶    closed (payment settled): cannot be cancelled
/// ```
pub struct Order;

// Commands live for one decision; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Placing the same order again (same id, same content) decides
    /// nothing, so a retried request has its effect once.
    Place(PlaceOrder),
    /// From the saga: every line is reserved at these prices; the payment
    /// is due by `payment_due`.
    Confirm {
        lines: Vec<ReservedLine>,
        now: Timestamp,
        payment_due: Timestamp,
    },
    /// From the saga: these products could not be reserved.
    Reject { failures: Vec<LineFailure>, now: Timestamp },
    /// From the saga: the order is refused as a whole, nothing reserved.
    Refuse { refusal: Refusal, now: Timestamp },
    /// From the order's customer.
    Cancel {
        requested_by: UserId,
        reason: Reason,
        now: Timestamp,
    },
    /// From the saga: the payment window passed. `window` dates the orders
    /// confirmed before their event recorded a due time.
    Expire { now: Timestamp, window: TimeDelta },
    /// From an admin or a payment provider: `amount` was paid.
    Settle {
        reference: PaymentReference,
        amount: Money,
        now: Timestamp,
    },
    /// From an admin: the settled order is fulfilled.
    Close { now: Timestamp },
}

/// The lifecycle of an order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OrderState {
    #[default]
    NotPlaced,
    /// Waiting for the saga to reserve stock.
    Placed(PlacedOrder),
    /// Stock held, payment arranged and due.
    Confirmed(ConfirmedOrder),
    /// Paid; waiting to be fulfilled.
    Settled {
        order: ConfirmedOrder,
        payment: Payment,
    },
    /// Paid and fulfilled.
    Closed {
        order: ConfirmedOrder,
        payment: Payment,
        closed_at: Timestamp,
    },
    Rejected {
        order: PlacedOrder,
        failures: Vec<LineFailure>,
    },
    Refused {
        order: PlacedOrder,
        refusal: Refusal,
    },
    /// `payment` is the settled payment given back, if it was paid.
    Cancelled {
        order: ConfirmedOrder,
        reason: Reason,
        payment: Option<Payment>,
    },
}

/// What a customer asks for when placing an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub order: PlacedOrder,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub lines: OrderLines,
    pub customer: Customer,
    pub shipping: ShippingAddress,
}

/// An order as the saga confirmed it: priced, totalled, its payment due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedOrder {
    pub placed: PlacedOrder,
    pub lines: Vec<PricedLine>,
    pub total: Money,
    pub confirmed_at: Timestamp,
    /// `None` for orders confirmed before due times were recorded.
    pub payment_due: Option<Timestamp>,
}

impl ConfirmedOrder {
    /// When the payment is due: as recorded, else `window` after the
    /// confirmation.
    pub fn due(&self, window: TimeDelta) -> Timestamp {
        self.payment_due.unwrap_or(self.confirmed_at + window)
    }
}

/// A settled payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub reference: PaymentReference,
    pub amount: Money,
    pub settled_at: Timestamp,
}

impl OrderCommand {
    /// What the command would do, for refusals: "an order cannot be
    /// {action} while {status}".
    fn action(&self) -> &'static str {
        match self {
            Self::Place(_) => "placed",
            Self::Confirm { .. } => "confirmed",
            Self::Reject { .. } => "rejected",
            Self::Refuse { .. } => "refused",
            Self::Cancel { .. } => "cancelled",
            Self::Expire { .. } => "expired",
            Self::Settle { .. } => "settled",
            Self::Close { .. } => "closed",
        }
    }
}

impl OrderState {
    /// `None` before the order is placed.
    pub fn status(&self) -> Option<(OrderStatus, PaymentStatus)> {
        Some(match self {
            Self::NotPlaced => return None,
            Self::Placed(_) => (OrderStatus::Pending, PaymentStatus::Pending),
            Self::Confirmed(_) => (OrderStatus::Confirmed, PaymentStatus::Arranged),
            Self::Settled { .. } => (OrderStatus::Confirmed, PaymentStatus::Settled),
            Self::Closed { .. } => (OrderStatus::Closed, PaymentStatus::Settled),
            Self::Rejected { .. } | Self::Refused { .. } => (OrderStatus::Rejected, PaymentStatus::Void),
            Self::Cancelled { payment: None, .. } => (OrderStatus::Cancelled, PaymentStatus::Cancelled),
            Self::Cancelled { payment: Some(_), .. } => (OrderStatus::Cancelled, PaymentStatus::Refunded),
        })
    }

    pub fn placed(&self) -> Option<&PlacedOrder> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(order) | Self::Rejected { order, .. } | Self::Refused { order, .. } => Some(order),
            Self::Confirmed(confirmed)
            | Self::Settled { order: confirmed, .. }
            | Self::Closed { order: confirmed, .. }
            | Self::Cancelled { order: confirmed, .. } => Some(&confirmed.placed),
        }
    }

    /// The order as confirmed, once it was.
    pub fn confirmed(&self) -> Option<&ConfirmedOrder> {
        match self {
            Self::Confirmed(confirmed)
            | Self::Settled { order: confirmed, .. }
            | Self::Closed { order: confirmed, .. }
            | Self::Cancelled { order: confirmed, .. } => Some(confirmed),
            Self::NotPlaced | Self::Placed(_) | Self::Rejected { .. } | Self::Refused { .. } => None,
        }
    }

    /// The payment recorded, settled or since refunded.
    pub fn payment(&self) -> Option<&Payment> {
        match self {
            Self::Settled { payment, .. } | Self::Closed { payment, .. } => Some(payment),
            Self::Cancelled { payment, .. } => payment.as_ref(),
            _ => None,
        }
    }
}

/// Why an order was cancelled by the system, not its customer.
pub fn payment_window_expired() -> Reason {
    Reason::parse("payment window expired").expect("a valid reason")
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
    /// `cancelled_because` says why a cancelled order was cancelled.
    #[error("an order cannot be {action} while {status}")]
    InvalidTransition {
        status: OrderStatus,
        payment: PaymentStatus,
        action: &'static str,
        cancelled_because: Option<Reason>,
    },
    #[error("the reserved lines do not match the ordered lines")]
    ReservationMismatch,
    #[error("a rejection names at least one failed line")]
    NoFailures,
    #[error("the order total overflows")]
    TotalOverflow,
    #[error("the amount paid must equal the order's total, {total}")]
    AmountMismatch { total: Money },
    #[error("the order was paid already, with another payment reference")]
    AlreadySettled,
    #[error("the payment is not due before {due}")]
    NotDue { due: Timestamp },
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
            (
                S::Placed(order),
                C::Confirm {
                    lines,
                    now,
                    payment_due,
                },
            ) => confirm(order, lines, now, payment_due),
            (S::Placed(order), C::Reject { failures, now }) => reject(order, failures, now),
            (S::Placed(order), C::Refuse { refusal, now }) => Ok(refuse(order, refusal, now)),
            (state, command @ (C::Confirm { .. } | C::Reject { .. } | C::Refuse { .. }))
                if decided_so(state, &command) =>
            {
                Ok(vec![])
            }
            (state, C::Cancel { requested_by, .. })
                if state.placed().is_some_and(|order| order.customer_id != requested_by) =>
            {
                Err(OrderError::NotOwner)
            }
            (S::Confirmed(order), C::Cancel { reason, now, .. }) => Ok(vec![cancelled(order, reason, now)]),
            (S::Settled { order, payment }, C::Cancel { reason, now, .. }) => Ok(refund(order, payment, reason, now)),
            (S::Confirmed(order), C::Expire { now, window }) => expire(order, now, window),
            (S::Confirmed(order), C::Settle { reference, amount, now }) => settle(order, reference, amount, now),
            (state, C::Settle { reference, amount, .. })
                if state.payment().is_some_and(|p| p.reference == reference) =>
            {
                paid_already(state.payment(), amount)
            }
            (S::Settled { .. } | S::Closed { .. }, C::Settle { .. }) => Err(OrderError::AlreadySettled),
            (S::Settled { order, .. }, C::Close { now }) => Ok(vec![closed(order, now)]),
            (S::Cancelled { .. }, C::Cancel { .. }) | (S::Closed { .. }, C::Close { .. }) => Ok(vec![]),
            // Paid, ended or decided otherwise: nothing left to expire.
            (
                S::Settled { .. } | S::Closed { .. } | S::Cancelled { .. } | S::Rejected { .. } | S::Refused { .. },
                C::Expire { .. },
            ) => Ok(vec![]),
            (state, command) => Err(refusal(state, &command)),
        }
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        use OrderEvent as E;
        use OrderState as S;
        match (state, event) {
            (S::NotPlaced, E::Placed { .. }) => placed_by(event).map_or(S::NotPlaced, S::Placed),
            (
                S::Placed(placed),
                E::Confirmed {
                    lines,
                    total,
                    at,
                    payment_due,
                    ..
                },
            ) => S::Confirmed(ConfirmedOrder {
                placed,
                lines: lines.clone(),
                total: *total,
                confirmed_at: *at,
                payment_due: *payment_due,
            }),
            (S::Placed(order), E::Rejected { failures, .. }) => S::Rejected {
                order,
                failures: failures.clone(),
            },
            (S::Placed(order), E::Refused { refusal, .. }) => S::Refused {
                order,
                refusal: *refusal,
            },
            (
                S::Confirmed(order),
                E::PaymentSettled {
                    reference, amount, at, ..
                },
            ) => S::Settled {
                order,
                payment: Payment {
                    reference: reference.clone(),
                    amount: *amount,
                    settled_at: *at,
                },
            },
            (S::Settled { order, payment }, E::Closed { at, .. }) => S::Closed {
                order,
                payment,
                closed_at: *at,
            },
            (S::Confirmed(order), E::Cancelled { reason, .. }) => S::Cancelled {
                order,
                reason: reason.clone(),
                payment: None,
            },
            (S::Settled { order, payment }, E::Cancelled { reason, .. }) => S::Cancelled {
                order,
                reason: reason.clone(),
                payment: Some(payment),
            },
            (state, _) => state,
        }
    }
}

/// The order an `OrderPlaced` event places.
fn placed_by(event: &OrderEvent) -> Option<PlacedOrder> {
    let OrderEvent::Placed {
        order_id,
        customer_id,
        lines,
        customer,
        shipping,
        ..
    } = event
    else {
        return None;
    };
    Some(PlacedOrder {
        order_id: *order_id,
        customer_id: *customer_id,
        lines: lines.clone(),
        customer: customer.clone(),
        shipping: shipping.clone(),
    })
}

/// Whether `state` is already what `command` (a saga decision) would make
/// it, or past it: confirmed (and perhaps paid, closed or cancelled since),
/// rejected, or refused.
fn decided_so(state: &OrderState, command: &OrderCommand) -> bool {
    match command {
        OrderCommand::Confirm { .. } => state.confirmed().is_some(),
        OrderCommand::Reject { .. } => matches!(state, OrderState::Rejected { .. }),
        OrderCommand::Refuse { .. } => matches!(state, OrderState::Refused { .. }),
        _ => false,
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
        Some((status, payment)) => OrderError::InvalidTransition {
            status,
            payment,
            action: command.action(),
            cancelled_because: match state {
                OrderState::Cancelled { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        },
        None => OrderError::NotFound,
    }
}

fn confirm(
    order: &PlacedOrder,
    reserved: Vec<ReservedLine>,
    now: Timestamp,
    payment_due: Timestamp,
) -> Result<Vec<OrderEvent>, OrderError> {
    let (lines, total) = price(&order.lines, reserved)?;
    Ok(vec![OrderEvent::Confirmed {
        order_id: order.order_id,
        customer_id: order.customer_id,
        lines,
        total,
        at: now,
        payment_due: Some(payment_due),
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

fn refuse(order: &PlacedOrder, refusal: Refusal, now: Timestamp) -> Vec<OrderEvent> {
    vec![OrderEvent::Refused {
        order_id: order.order_id,
        customer_id: order.customer_id,
        refusal,
        at: now,
    }]
}

fn cancelled(order: &ConfirmedOrder, reason: Reason, now: Timestamp) -> OrderEvent {
    OrderEvent::Cancelled {
        order_id: order.placed.order_id,
        customer_id: order.placed.customer_id,
        lines: order.placed.lines.clone(),
        reason,
        at: now,
    }
}

/// A paid order cancelled: its stock goes back and its payment is refunded.
fn refund(order: &ConfirmedOrder, payment: &Payment, reason: Reason, now: Timestamp) -> Vec<OrderEvent> {
    vec![
        cancelled(order, reason, now),
        OrderEvent::PaymentRefunded {
            order_id: order.placed.order_id,
            customer_id: order.placed.customer_id,
            reference: payment.reference.clone(),
            amount: payment.amount,
            at: now,
        },
    ]
}

/// The same payment again: nothing to decide, unless it names another
/// amount than the payment recorded.
fn paid_already(payment: Option<&Payment>, amount: Money) -> Result<Vec<OrderEvent>, OrderError> {
    match payment {
        Some(payment) if payment.amount != amount => Err(OrderError::AmountMismatch { total: payment.amount }),
        _ => Ok(vec![]),
    }
}

fn expire(order: &ConfirmedOrder, now: Timestamp, window: TimeDelta) -> Result<Vec<OrderEvent>, OrderError> {
    let due = order.due(window);
    if now < due {
        return Err(OrderError::NotDue { due });
    }
    Ok(vec![cancelled(order, payment_window_expired(), now)])
}

fn settle(
    order: &ConfirmedOrder,
    reference: PaymentReference,
    amount: Money,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, OrderError> {
    if amount != order.total {
        return Err(OrderError::AmountMismatch { total: order.total });
    }
    Ok(vec![OrderEvent::PaymentSettled {
        order_id: order.placed.order_id,
        customer_id: order.placed.customer_id,
        reference,
        amount,
        at: now,
    }])
}

fn closed(order: &ConfirmedOrder, now: Timestamp) -> OrderEvent {
    OrderEvent::Closed {
        order_id: order.placed.order_id,
        customer_id: order.placed.customer_id,
        at: now,
    }
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
