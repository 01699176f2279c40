//! What the runner knows between batches: the saga state of each order
//! still being reserved, and where a restart must resume so that none of
//! them is missed. A reservation for an order it does not remember is set
//! aside for the order's own stream to decide (`super::forgotten`).

use std::collections::{BTreeMap, HashMap};

use domain::event::DomainEvent;
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

    /// The last event seen.
    pub(super) fn last(&self) -> Option<Position> {
        self.last
    }

    /// Passes over the event at `position` (parked, skipped, or of an order
    /// held back): the checkpoint may move past it.
    pub(super) fn pass(&mut self, position: Position) {
        self.last = Some(position);
    }

    /// Drops what is known of `order_id`, now held back: it pins no resume
    /// point, and its events are read again once it is released.
    pub(super) fn forget(&mut self, order_id: OrderId) {
        self.reserving.remove(&order_id);
        self.resume_points.remove(&order_id);
    }

    /// Where the events of the order `recorded` concerns would be read again
    /// from if it were parked, and whether from nothing known of the order:
    /// before its placement when it is being reserved or this is its
    /// placement, else just before `recorded` (the order's own stream says
    /// the rest).
    pub(super) fn replay_point(&self, recorded: &RecordedEvent, order: Option<OrderId>) -> (Option<Position>, bool) {
        if let Some(resume) = order.and_then(|order| self.resume_points.get(&order)) {
            return (*resume, true);
        }
        let placement = recorded.revision == 0 && OrderEvent::id_in_stream(&recorded.stream).is_some();
        (self.last, placement)
    }

    /// Steps an event of a released order read again, whose placement
    /// resumes after `resume` when the replay starts before it.
    pub(super) fn replayed(
        &mut self,
        recorded: &RecordedEvent,
        event: SagaEvent<'_>,
        resume: Option<Option<Position>>,
    ) -> Vec<Caused> {
        if let (SagaEvent::Order(OrderEvent::Placed { order_id, .. }), Some(resume)) = (event, resume) {
            self.resume_points.insert(*order_id, resume);
        }
        self.step(event, caused_by(recorded))
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
