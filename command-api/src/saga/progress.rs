//! What the runner knows between batches: the saga state of each order
//! still being reserved, and where a restart must resume so that none of
//! them is missed. A reservation for an order it does not remember is set
//! aside for the order's own stream to decide (`super::forgotten`).

use std::collections::{BTreeMap, HashMap};

use domain::ids::OrderId;
use domain::order::OrderEvent;
use domain::order_saga::{self, SagaCommand, SagaEvent, SagaState};
use domain::product::ProductEvent;
use event_store::{Position, RecordedEvent};

use crate::aggregates::Causation;

/// A command the saga asks for, with what caused it.
pub(super) type Caused = (SagaCommand, Causation);

pub(super) struct Progress {
    /// Saga state of orders still being reserved; a confirmed or ended
    /// order needs none (a cancellation names its own lines).
    reserving: HashMap<OrderId, SagaState>,
    /// For each of those orders, where the log stood just before it was
    /// placed.
    resume_points: BTreeMap<OrderId, Option<Position>>,
    /// The last event seen.
    last: Option<Position>,
    /// Reservations met for orders not remembered here, with what caused
    /// them to be seen: the order may have ended (memory is no guide, as
    /// another runner or an older checkpoint may have replayed it).
    forgotten: Vec<(ProductEvent, Causation)>,
}

impl Progress {
    /// Nothing seen yet after `resume`.
    pub(super) fn resuming_after(resume: Option<Position>) -> Self {
        Self {
            reserving: HashMap::new(),
            resume_points: BTreeMap::new(),
            last: resume,
            forgotten: Vec::new(),
        }
    }

    /// Where a restart must resume so that no unfinished order is missed:
    /// before the oldest of them, else after the last event seen.
    pub(super) fn resume_point(&self) -> Option<Position> {
        self.resume_points.values().copied().min().unwrap_or(self.last)
    }

    /// Takes in the next event of the log, `recorded`, which means `event`
    /// to the saga (`None`: nothing), and returns the commands that follow.
    pub(super) fn observe(&mut self, recorded: &RecordedEvent, event: Option<SagaEvent<'_>>) -> Vec<Caused> {
        let before = self.last.replace(recorded.position);
        let Some(event) = event else { return vec![] };
        if let SagaEvent::Order(OrderEvent::Placed { order_id, .. }) = event {
            self.resume_points.insert(*order_id, before);
        }
        self.step(event, caused_by(recorded))
    }

    /// Steps the saga of `event`'s order and returns the commands that
    /// follow, each caused by `causation`.
    pub(super) fn step(&mut self, event: SagaEvent<'_>, causation: Causation) -> Vec<Caused> {
        let Some(order_id) = event.order_id() else {
            return vec![];
        };
        let state = match (self.reserving.remove(&order_id), event) {
            (Some(state), _) => state,
            (None, SagaEvent::Product(reserved @ ProductEvent::StockReserved { .. })) => {
                self.forgotten.push((reserved.clone(), causation));
                return vec![];
            }
            (None, _) => SagaState::Idle,
        };
        let (state, commands) = order_saga::step(state, event);
        match state {
            SagaState::Reserving(_) => {
                self.reserving.insert(order_id, state);
            }
            SagaState::Idle | SagaState::Confirmed(_) | SagaState::Ended(_) => {
                self.resume_points.remove(&order_id);
            }
        }
        commands.into_iter().map(|command| (command, causation)).collect()
    }

    /// The reservations set aside since the last call, for orders this
    /// runner does not remember.
    pub(super) fn take_forgotten(&mut self) -> Vec<(ProductEvent, Causation)> {
        std::mem::take(&mut self.forgotten)
    }
}

/// The saga acts on no user's behalf; its events record the event that
/// caused them.
fn caused_by(recorded: &RecordedEvent) -> Causation {
    Causation {
        correlation_id: recorded.metadata.correlation_id,
        causation_id: Some(recorded.id),
        user_id: None,
    }
}
