//! The order saga: the process that turns a placed order into reserved stock
//! and a confirmation, or into a rejection with nothing held.
//!
//! It is pure: [`evolve`] folds what happened into one order's saga state and
//! [`react`] says which commands follow. A thin runner on the command side
//! feeds it events from the log and executes the commands. Every command is
//! idempotent in its aggregate, so replaying the saga after a crash repeats
//! commands harmlessly instead of applying them twice.
//!
//! ```text
//! OrderPlaced ──▶ Reserve every line
//! OrderPlaced over the customer's limit ([`Unsettled`]) ──▶ Refuse (nothing
//!                    is reserved)
//! all lines reserved ──▶ Confirm (price snapshot from the reservations)
//! a line refused (and every line answered) ──▶ Reject
//! OrderRejected, OrderRefused ──▶ Release every reservation
//! OrderCancelled ──▶ Release every line (the event names them, so this
//!                    needs no saga state: cancellations come any time later)
//! a reservation arriving after the order ended ──▶ Release it
//! a confirmed order unpaid when due ([`Unsettled`]) ──▶ Expire (its
//!                    OrderCancelled releases every line as above)
//! ```
//!
//! Beside it, [`Unsettled`] counts each customer's orders waiting for a
//! decision or a payment: an order placed over `MAX_UNSETTLED_ORDERS` is
//! refused before anything is reserved ([`SagaCommand::Refuse`]), and a
//! confirmed order still unpaid when its payment is due is cancelled
//! ([`SagaCommand::Expire`]).

use std::collections::BTreeMap;

use crate::ids::{OrderId, ProductId};
use crate::order::{LineFailure, OrderEvent, OrderLine, Refusal, RejectionReason, ReservedLine};
use crate::product::ProductEvent;
use crate::quantity::Quantity;

/// What the saga listens to.
#[derive(Debug, Clone, Copy)]
pub enum SagaEvent<'a> {
    Order(&'a OrderEvent),
    Product(&'a ProductEvent),
    /// A reservation was asked of a product that does not exist. There is no
    /// product stream to record that in, so the runner reports it directly;
    /// on a replay the same request meets the same answer.
    ProductMissing {
        order_id: OrderId,
        product_id: ProductId,
    },
}

impl SagaEvent<'_> {
    /// The order whose saga this event belongs to, if any.
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Self::Order(event) => Some(event.order_id()),
            Self::Product(
                ProductEvent::StockReserved { order_id, .. }
                | ProductEvent::StockReservationRefused { order_id, .. }
                | ProductEvent::StockReleased { order_id, .. },
            ) => Some(*order_id),
            Self::Product(_) => None,
            Self::ProductMissing { order_id, .. } => Some(*order_id),
        }
    }
}

/// What the saga asks of the aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaCommand {
    Reserve {
        product_id: ProductId,
        order_id: OrderId,
        quantity: Quantity,
    },
    Release {
        product_id: ProductId,
        order_id: OrderId,
    },
    Confirm {
        order_id: OrderId,
        lines: Vec<ReservedLine>,
    },
    Reject {
        order_id: OrderId,
        failures: Vec<LineFailure>,
    },
    /// The customer has too many orders waiting: refuse this one whole.
    Refuse {
        order_id: OrderId,
        refusal: Refusal,
    },
    /// The payment window passed: cancel the order, its stock goes back.
    Expire {
        order_id: OrderId,
    },
}

/// One order's progress through the saga.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SagaState {
    /// Nothing seen yet for this order.
    #[default]
    Idle,
    /// Waiting for an answer from every line's product.
    Reserving(Reservations),
    /// The order holds its stock until it is cancelled.
    Confirmed(Reservations),
    /// The order ended; reservations still arriving are released.
    Ended(Reservations),
}

/// The answers gathered so far for an order's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservations {
    pub order_id: OrderId,
    pub lines: Vec<OrderLine>,
    pub reserved: BTreeMap<ProductId, ReservedLine>,
    pub refused: BTreeMap<ProductId, RejectionReason>,
}

impl Reservations {
    fn all_answered(&self) -> bool {
        self.lines
            .iter()
            .all(|line| self.reserved.contains_key(&line.product_id) || self.refused.contains_key(&line.product_id))
    }

    fn release_all(&self) -> Vec<SagaCommand> {
        self.reserved
            .keys()
            .map(|product_id| SagaCommand::Release {
                product_id: *product_id,
                order_id: self.order_id,
            })
            .collect()
    }
}

/// Folds one event into the saga state of its order.
pub fn evolve(state: SagaState, event: SagaEvent<'_>) -> SagaState {
    match (state, event) {
        (SagaState::Idle, SagaEvent::Order(OrderEvent::Placed { order_id, lines, .. })) => {
            SagaState::Reserving(Reservations {
                order_id: *order_id,
                lines: lines.as_slice().to_vec(),
                reserved: BTreeMap::new(),
                refused: BTreeMap::new(),
            })
        }
        (SagaState::Idle, _) => SagaState::Idle,
        (SagaState::Reserving(reservations), SagaEvent::Order(OrderEvent::Confirmed { .. })) => {
            SagaState::Confirmed(reservations)
        }
        (
            SagaState::Reserving(reservations) | SagaState::Confirmed(reservations),
            SagaEvent::Order(OrderEvent::Rejected { .. } | OrderEvent::Refused { .. } | OrderEvent::Cancelled { .. }),
        ) => SagaState::Ended(reservations),
        (SagaState::Reserving(reservations), event) => SagaState::Reserving(record_answer(reservations, event)),
        (SagaState::Confirmed(reservations), _) => SagaState::Confirmed(reservations),
        (SagaState::Ended(mut reservations), SagaEvent::Product(ProductEvent::StockReleased { product_id, .. })) => {
            reservations.reserved.remove(product_id);
            SagaState::Ended(reservations)
        }
        (SagaState::Ended(reservations), event) => SagaState::Ended(record_answer(reservations, event)),
    }
}

fn record_answer(mut reservations: Reservations, event: SagaEvent<'_>) -> Reservations {
    match event {
        SagaEvent::Product(ProductEvent::StockReserved {
            product_id,
            quantity,
            unit_price,
            sku,
            name,
            ..
        }) => {
            reservations.reserved.insert(
                *product_id,
                ReservedLine {
                    product_id: *product_id,
                    sku: sku.clone(),
                    name: name.clone(),
                    quantity: *quantity,
                    unit_price: *unit_price,
                },
            );
        }
        SagaEvent::Product(ProductEvent::StockReservationRefused {
            product_id,
            requested,
            available,
            ..
        }) => {
            reservations.refused.insert(
                *product_id,
                RejectionReason::InsufficientStock {
                    requested: *requested,
                    available: *available,
                },
            );
        }
        SagaEvent::ProductMissing { product_id, .. } => {
            reservations
                .refused
                .insert(product_id, RejectionReason::ProductNotFound);
        }
        _ => {}
    }
    reservations
}

/// The commands that follow `event`, given `state`: the saga state *after*
/// `event` was folded in by [`evolve`].
pub fn react(state: &SagaState, event: SagaEvent<'_>) -> Vec<SagaCommand> {
    match (state, event) {
        (SagaState::Reserving(reservations), SagaEvent::Order(OrderEvent::Placed { .. })) => reservations
            .lines
            .iter()
            .map(|line| SagaCommand::Reserve {
                product_id: line.product_id,
                order_id: reservations.order_id,
                quantity: line.quantity,
            })
            .collect(),
        (SagaState::Reserving(reservations), SagaEvent::Product(_) | SagaEvent::ProductMissing { .. }) => {
            if !reservations.all_answered() {
                return vec![];
            }
            decide_outcome(reservations)
        }
        (_, SagaEvent::Order(OrderEvent::Cancelled { order_id, lines, .. })) => lines
            .as_slice()
            .iter()
            .map(|line| SagaCommand::Release {
                product_id: line.product_id,
                order_id: *order_id,
            })
            .collect(),
        (
            SagaState::Ended(reservations),
            SagaEvent::Order(OrderEvent::Rejected { .. } | OrderEvent::Refused { .. }),
        ) => reservations.release_all(),
        (SagaState::Ended(reservations), SagaEvent::Product(ProductEvent::StockReserved { product_id, .. })) => {
            vec![SagaCommand::Release {
                product_id: *product_id,
                order_id: reservations.order_id,
            }]
        }
        _ => vec![],
    }
}

/// Every line answered: confirm when all were reserved, otherwise reject
/// (the releases follow the rejection).
fn decide_outcome(reservations: &Reservations) -> Vec<SagaCommand> {
    if reservations.refused.is_empty() {
        let lines = reservations
            .lines
            .iter()
            .filter_map(|line| reservations.reserved.get(&line.product_id).cloned())
            .collect();
        return vec![SagaCommand::Confirm {
            order_id: reservations.order_id,
            lines,
        }];
    }
    let failures = reservations
        .lines
        .iter()
        .filter_map(|line| {
            reservations.refused.get(&line.product_id).map(|reason| LineFailure {
                product_id: line.product_id,
                reason: *reason,
            })
        })
        .collect();
    vec![SagaCommand::Reject {
        order_id: reservations.order_id,
        failures,
    }]
}

/// [`evolve`] then [`react`]: the new state and the commands that follow.
pub fn step(state: SagaState, event: SagaEvent<'_>) -> (SagaState, Vec<SagaCommand>) {
    let state = evolve(state, event);
    let commands = react(&state, event);
    (state, commands)
}

mod implied;
#[cfg(test)]
mod tests;
mod unsettled;

pub use unsettled::{Admission, Unsettled};
