//! Placing and cancelling orders. Placing waits, for a bounded time, for the
//! order saga to confirm or reject the order; at most so many requests of
//! the process wait at a time, and past that an order is answered pending
//! at once, as if its wait had run out.

use std::sync::Arc;
use std::time::Duration;

use domain::ids::{OrderId, ProductId, UserId};
use domain::money::Money;
use domain::order::{
    ConfirmedOrder, Customer, LineFailure, Order, OrderCommand, OrderError, OrderLines, OrderState, PaymentStatus,
    PlacedOrder, PricedLine, Refusal, ShippingAddress,
};
use domain::text::Reason;
use domain::validation::{InvalidField, Problem};
use event_store::Position;
use uuid::Uuid;

use api_common::wait_cap::WaitCap;

use crate::aggregates::{Aggregates, Causation, CommandError};
use crate::order_outcomes::OrderOutcomes;

/// Order ids derived from idempotency keys live in their own namespace.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x5d0b_1c3e_7a52_4f0e_9b8e_2f6a_4c11_d003);
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// What placing and cancelling fail with. The order aggregate's refusals
/// say why: `IdTaken` when an `Idempotency-Key` was used for another order,
/// `NotFound` or `NotOwner` for an order that is not the customer's, and
/// `InvalidTransition` for one that cannot be cancelled.
pub type OrdersError = CommandError<OrderError>;

/// An order as a client asked for it, before parsing.
pub struct PlaceOrder {
    pub items: Vec<(String, i64)>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub customer_phone: String,
    pub address: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub postal_code: String,
}

/// Where an order stands when the answer is given.
pub enum Placed {
    Confirmed {
        order_id: OrderId,
        lines: Vec<PricedLine>,
        total: Money,
        position: Position,
    },
    /// Confirmed, then cancelled: what a retried request finds when the
    /// order was cancelled since it was first placed.
    Cancelled {
        order_id: OrderId,
        lines: Vec<PricedLine>,
        total: Money,
        position: Position,
    },
    Rejected {
        order_id: OrderId,
        failures: Vec<LineFailure>,
        position: Position,
    },
    /// Refused as a whole before anything was reserved (too many orders
    /// waiting for payment).
    Refused {
        order_id: OrderId,
        refusal: Refusal,
        position: Position,
    },
    Pending {
        order_id: OrderId,
        position: Position,
    },
}

pub struct Orders {
    orders: Arc<Aggregates<Order>>,
    outcomes: Arc<OrderOutcomes>,
    wait: Duration,
    waiters: WaitCap,
}

impl Orders {
    /// Placing waits up to `wait` for the saga's decision, with at most
    /// `max_waiters` requests waiting at a time.
    pub fn new(
        orders: Arc<Aggregates<Order>>,
        outcomes: Arc<OrderOutcomes>,
        wait: Duration,
        max_waiters: usize,
    ) -> Self {
        Self {
            orders,
            outcomes,
            wait,
            waiters: WaitCap::new("order-decision", max_waiters),
        }
    }

    pub async fn place(
        &self,
        customer_id: UserId,
        idempotency_key: Option<&str>,
        request: PlaceOrder,
        causation: Causation,
    ) -> Result<Placed, OrdersError> {
        let order_id = match idempotency_key {
            Some(key) => order_id_for_key(customer_id, key)?,
            None => OrderId::from_uuid(Uuid::now_v7()),
        };
        let lines = parse_lines(&request.items)?;
        let customer = Customer::parse(
            request.customer_name.as_deref(),
            request.customer_email.as_deref(),
            &request.customer_phone,
        )?;
        let shipping = ShippingAddress::parse(
            &request.address,
            &request.city,
            &request.state,
            &request.country,
            &request.postal_code,
        )?;
        let decided_soon = self.outcomes.watch(order_id);
        let now = chrono::Utc::now();
        let placed = self
            .orders
            .execute(order_id, causation, || {
                OrderCommand::Place(domain::order::PlaceOrder {
                    order: PlacedOrder {
                        order_id,
                        customer_id,
                        lines: lines.clone(),
                        customer: customer.clone(),
                        shipping: shipping.clone(),
                    },
                    now,
                })
            })
            .await?;
        let placed_at = placed
            .position
            .ok_or_else(|| OrdersError::internal("placing left the order's stream empty"))?;
        if matches!(placed.state, OrderState::Placed(_))
            && let Some(_waiting) = self.waiters.enter()
        {
            // Woken early when the saga decides; the order is read again
            // either way, so a missed wake-up only costs the wait.
            let _ = tokio::time::timeout(self.wait, decided_soon.decided()).await;
        }
        // The saga of this process decides most orders, and its decision is
        // then held folded: no need to read it back. A fold still placed may
        // have missed another replica's decision, so it is read.
        let current = match self.orders.held(order_id) {
            Some(held) if !matches!(held.state, OrderState::Placed(_)) => held,
            _ => self.orders.load(order_id).await?,
        };
        Ok(answer(order_id, current.state, current.position.unwrap_or(placed_at)))
    }

    /// The order's payment status after the cancel (`cancelled` if it was
    /// unpaid, `refunded` if it was paid) and its position.
    pub async fn cancel(
        &self,
        customer_id: UserId,
        order_id: OrderId,
        reason: &str,
        causation: Causation,
    ) -> Result<(PaymentStatus, Position), OrdersError> {
        let reason = Reason::parse(reason)?;
        let now = chrono::Utc::now();
        let decided = self
            .orders
            .execute(order_id, causation, || OrderCommand::Cancel {
                requested_by: customer_id,
                reason: reason.clone(),
                now,
            })
            .await?;
        // The aggregate refuses to cancel an order that was never placed,
        // so its stream is not empty here.
        let position = decided.position.ok_or(CommandError::Refused(OrderError::NotFound))?;
        let (_, payment) = decided
            .state
            .status()
            .ok_or(CommandError::Refused(OrderError::NotFound))?;
        Ok((payment, position))
    }
}

fn answer(order_id: OrderId, state: OrderState, position: Position) -> Placed {
    match state {
        OrderState::Confirmed(ConfirmedOrder { lines, total, .. })
        | OrderState::Settled {
            order: ConfirmedOrder { lines, total, .. },
            ..
        }
        | OrderState::Closed {
            order: ConfirmedOrder { lines, total, .. },
            ..
        } => Placed::Confirmed {
            order_id,
            lines,
            total,
            position,
        },
        OrderState::Cancelled {
            order: ConfirmedOrder { lines, total, .. },
            ..
        } => Placed::Cancelled {
            order_id,
            lines,
            total,
            position,
        },
        OrderState::Refused { refusal, .. } => Placed::Refused {
            order_id,
            refusal,
            position,
        },
        OrderState::Rejected { failures, .. } => Placed::Rejected {
            order_id,
            failures,
            position,
        },
        OrderState::Placed(_) | OrderState::NotPlaced => Placed::Pending { order_id, position },
    }
}

/// The same customer and key always name the same order, so a retried
/// request finds the order it placed the first time.
fn order_id_for_key(customer_id: UserId, key: &str) -> Result<OrderId, InvalidField> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidField::new(
            "Idempotency-Key",
            Problem::InvalidCharacters {
                allowed: "1 to 255 printable ASCII characters without spaces",
            },
        ));
    }
    let name = format!("{customer_id}/{key}");
    Ok(OrderId::from_uuid(Uuid::new_v5(
        &IDEMPOTENCY_NAMESPACE,
        name.as_bytes(),
    )))
}

fn parse_lines(items: &[(String, i64)]) -> Result<OrderLines, InvalidField> {
    // Counted before the ids are parsed, so a huge list is refused cheaply.
    if !(OrderLines::MIN_LINES..=OrderLines::MAX_LINES).contains(&items.len()) {
        return Err(InvalidField::new(
            "items",
            Problem::WrongCount {
                min: OrderLines::MIN_LINES,
                max: OrderLines::MAX_LINES,
            },
        ));
    }
    let parsed = items
        .iter()
        .enumerate()
        .map(|(index, (product_id, quantity))| {
            let product_id: ProductId = product_id.parse().map_err(|_| {
                InvalidField::new(format!("items[{index}].productId"), Problem::Malformed { what: "UUID" })
            })?;
            Ok((product_id, *quantity))
        })
        .collect::<Result<Vec<_>, InvalidField>>()?;
    OrderLines::parse(&parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_names_one_order_per_customer() {
        let alice = UserId::from_uuid(Uuid::from_u128(1));
        let bob = UserId::from_uuid(Uuid::from_u128(2));
        assert_eq!(
            order_id_for_key(alice, "k-1").unwrap(),
            order_id_for_key(alice, "k-1").unwrap()
        );
        assert_ne!(
            order_id_for_key(alice, "k-1").unwrap(),
            order_id_for_key(bob, "k-1").unwrap()
        );
        assert_ne!(
            order_id_for_key(alice, "k-1").unwrap(),
            order_id_for_key(alice, "k-2").unwrap()
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        let alice = UserId::from_uuid(Uuid::from_u128(1));
        for key in ["", "has space", &"k".repeat(256), "tab\t"] {
            assert_eq!(
                order_id_for_key(alice, key).unwrap_err().field,
                "Idempotency-Key",
                "key {key:?}"
            );
        }
    }

    #[test]
    fn lines_name_the_bad_product_id_and_the_count() {
        let good = Uuid::new_v4().to_string();
        let error = parse_lines(&[(good.clone(), 1), ("nope".to_owned(), 1)]).unwrap_err();
        assert_eq!(error.field, "items[1].productId");
        let many: Vec<_> = (0..51).map(|_| (good.clone(), 1)).collect();
        assert_eq!(parse_lines(&many).unwrap_err().field, "items");
        assert_eq!(parse_lines(&[]).unwrap_err().field, "items");
    }
}
