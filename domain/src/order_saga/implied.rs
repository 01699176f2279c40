//! The saga state an order's own stream implies, for a runner that does not
//! remember the order: one that forgot it when it ended, or never saw it
//! (another replica's runner, or a restart from an older checkpoint).
//!
//! A reservation can reach such a runner after its order ended: a product
//! missing when the order was rejected is created, and a runner replaying
//! the order asks it again. What remains for the saga to do then depends
//! on the order, not on the runner's memory.

use super::{Reservations, SagaState};
use crate::order::OrderState;

impl SagaState {
    /// The saga state of the order in `order`, with no answers recorded:
    ///
    /// - rejected, refused or cancelled: [`SagaState::Ended`], so a
    ///   reservation still arriving is released;
    /// - confirmed (paid or closed since, too): [`SagaState::Confirmed`]; it
    ///   holds its reservations;
    /// - pending, or not placed: [`SagaState::Idle`]. The runner reserving
    ///   it decides, and reads every answer before its decision in the log;
    ///   an answer after the decision finds the order ended.
    pub fn implied_by(order: &OrderState) -> Self {
        let unanswered = |placed: &crate::order::PlacedOrder| Reservations {
            order_id: placed.order_id,
            lines: placed.lines.as_slice().to_vec(),
            reserved: std::collections::BTreeMap::new(),
            refused: std::collections::BTreeMap::new(),
        };
        match order {
            OrderState::NotPlaced | OrderState::Placed(_) => Self::Idle,
            OrderState::Confirmed(confirmed)
            | OrderState::Settled { order: confirmed, .. }
            | OrderState::Closed { order: confirmed, .. } => Self::Confirmed(unanswered(&confirmed.placed)),
            OrderState::Cancelled { order: confirmed, .. } => Self::Ended(unanswered(&confirmed.placed)),
            OrderState::Rejected { order, .. } | OrderState::Refused { order, .. } => Self::Ended(unanswered(order)),
        }
    }
}
