//! What the runner knows between batches: the saga state of each order
//! still being reserved, each customer's orders waiting for a decision or a
//! payment (the [`Unsettled`] ledger), and where a restart must resume so
//! that none of them is missed. A reservation for an order it does not
//! remember is set aside for the order's own stream to decide
//! (`super::forgotten`).
//!
//! An order pins its resume point, just before its placement, while it is
//! being reserved or the ledger holds it (confirmed and unpaid), so a
//! restart reads its placement again and rebuilds the ledger exactly: the
//! counts and due times come from the log, not from memory. What a restart
//! reads again up to `handled` (the last position whose commands were all
//! executed) is folded in without executing its commands again.

use std::collections::{BTreeMap, HashMap};

use domain::event::DomainEvent;
use domain::ids::OrderId;
use domain::order::OrderEvent;
use domain::order_saga::{self, Admission, SagaCommand, SagaEvent, SagaState, Unsettled};
use domain::product::ProductEvent;
use event_store::{Position, RecordedEvent};

use crate::aggregates::Causation;

/// A command the saga asks for, with what caused it.
pub(super) type Caused = (SagaCommand, Causation);

pub(super) struct Progress {
    /// Saga state of orders still being reserved; a confirmed or ended
    /// order needs none (a cancellation names its own lines).
    reserving: HashMap<OrderId, SagaState>,
    /// For each of those orders and those the ledger holds, where the log
    /// stood just before it was placed.
    resume_points: BTreeMap<OrderId, Option<Position>>,
    /// Each customer's orders waiting for a decision or a payment, and when
    /// each confirmed one is due.
    unsettled: Unsettled,
    /// Before a restart, every command of the events up to here was
    /// executed; `None` once passed (or when the checkpoint does not say).
    handled: Option<Position>,
    /// Reservations of events handled before the restart, kept until the
    /// log passes `handled`: a product found missing is recorded nowhere,
    /// so an order still waiting for that line then asks again.
    deferred: Vec<Caused>,
    /// The last event seen.
    last: Option<Position>,
    /// Reservations met for orders not remembered here, with what caused
    /// them to be seen: the order may have ended (memory is no guide, as
    /// another runner or an older checkpoint may have replayed it).
    forgotten: Vec<(ProductEvent, Causation)>,
}

impl Progress {
    /// Nothing seen yet after `resume`; the commands of events up to
    /// `handled` were executed before.
    pub(super) fn resuming_after(resume: Option<Position>, handled: Option<Position>, unsettled: Unsettled) -> Self {
        Self {
            reserving: HashMap::new(),
            resume_points: BTreeMap::new(),
            last: resume,
            forgotten: Vec::new(),
            unsettled,
            handled: handled.filter(|handled| resume.is_none_or(|resume| *handled > resume)),
            deferred: Vec::new(),
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
        self.take_in(recorded, event, Some(before))
    }

    /// Folds `event` into the ledger, then steps the saga unless the ledger
    /// refuses the placement: a refused order reserves nothing. An order
    /// the ledger holds from now on pins `resume`, if given.
    fn take_in(
        &mut self,
        recorded: &RecordedEvent,
        event: SagaEvent<'_>,
        resume: Option<Option<Position>>,
    ) -> Vec<Caused> {
        if let SagaEvent::Order(order_event) = event {
            let order_id = order_event.order_id();
            if let Admission::Refused(refusal) = self.unsettled.observe(order_event) {
                return vec![(SagaCommand::Refuse { order_id, refusal }, caused_by(recorded))];
            }
            if let Some(resume) = resume
                && self.unsettled.holds(order_id)
            {
                self.resume_points.entry(order_id).or_insert(resume);
            }
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
                if !self.unsettled.holds(order_id) {
                    self.resume_points.remove(&order_id);
                }
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
        self.unsettled.forget(order_id);
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
        self.take_in(recorded, event, resume)
    }

    /// The reservations set aside since the last call, for orders this
    /// runner does not remember.
    pub(super) fn take_forgotten(&mut self) -> Vec<(ProductEvent, Causation)> {
        std::mem::take(&mut self.forgotten)
    }
}

impl Progress {
    /// Whether the commands of the event at `position` were executed
    /// before the restart.
    pub(super) fn handled_before(&self, position: Position) -> bool {
        self.handled.is_some_and(|handled| position <= handled)
    }

    /// Sets aside the `commands` of an event handled before the restart
    /// (and the reservations seen for orders not remembered, followed up
    /// then too), keeping its reservations for [`Progress::take_deferred`].
    pub(super) fn hush(&mut self, commands: Vec<Caused>) {
        self.forgotten.clear();
        let reservations = commands
            .into_iter()
            .filter(|(command, _)| matches!(command, SagaCommand::Reserve { .. }));
        self.deferred.extend(reservations);
    }

    /// Once the log is past `handled`: the reservations set aside whose
    /// order is still waiting for that line's answer (asked again, a
    /// product answers nothing twice, and a missing one is reported).
    pub(super) fn take_deferred(&mut self) -> Vec<Caused> {
        let Some(handled) = self.handled else { return vec![] };
        if self.last.is_none_or(|last| last < handled) {
            return vec![];
        }
        self.handled = None;
        let deferred = std::mem::take(&mut self.deferred);
        deferred
            .into_iter()
            .filter(|(command, _)| self.awaits(command))
            .collect()
    }

    /// Whether `command` reserves a line its order is still waiting for.
    fn awaits(&self, command: &SagaCommand) -> bool {
        let SagaCommand::Reserve {
            product_id, order_id, ..
        } = command
        else {
            return false;
        };
        match self.reserving.get(order_id) {
            Some(SagaState::Reserving(reservations)) => {
                !reservations.reserved.contains_key(product_id) && !reservations.refused.contains_key(product_id)
            }
            _ => false,
        }
    }

    /// What a checkpoint saved now records as handled: every command of the
    /// events up to here was executed.
    pub(super) fn handled(&self) -> Option<Position> {
        self.last.max(self.handled)
    }

    /// When the next payment falls due; none while events handled before
    /// the restart are still being read (a payment may follow them).
    pub(super) fn next_due(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.handled.map_or_else(|| self.unsettled.next_due(), |_| None)
    }

    /// The orders whose payment is due by `now`, each taken once.
    pub(super) fn take_due(&mut self, now: chrono::DateTime<chrono::Utc>) -> Vec<OrderId> {
        if self.handled.is_some() {
            return vec![];
        }
        self.unsettled.take_due(now)
    }
}

/// The saga acts on no user's behalf; its events record the event that
/// caused them, and go on in its correlation and trace.
fn caused_by(recorded: &RecordedEvent) -> Causation {
    Causation {
        correlation_id: recorded.metadata.correlation_id,
        trace_id: recorded.metadata.trace_id,
        causation_id: Some(recorded.id),
        user_id: None,
    }
}
