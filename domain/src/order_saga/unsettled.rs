//! Each customer's orders still waiting for a decision or a payment, and
//! when each confirmed one's payment is due.
//!
//! The runner folds every order event in, in log order, so every runner
//! (replicas, restarts) counts the same orders at the same point of the
//! log: whether a placement is admitted and which orders are due follow
//! from the log alone. An order counts from its placement until it is
//! paid, rejected, refused or cancelled. A confirmation counts its order
//! too if the placement was not (a runner that resumed after it, or judged
//! it otherwise): the order's own stream says it was admitted.

use std::collections::{BTreeSet, HashMap};

use chrono::TimeDelta;

use crate::Timestamp;
use crate::ids::{OrderId, UserId};
use crate::order::{OrderEvent, Refusal};

/// Whether a placement may go on to reserve stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused(Refusal),
    /// Not a placement, or one already counted.
    NotAPlacement,
}

#[derive(Debug, Clone)]
pub struct Unsettled {
    /// The most orders one customer may have waiting (`MAX_UNSETTLED_ORDERS`).
    limit: u32,
    /// How long a confirmed order waits for its payment, for orders whose
    /// event does not record when it is due (`ORDER_PAYMENT_WINDOW`).
    window: TimeDelta,
    /// Each counted order's customer, and when its payment is due once
    /// confirmed (to take it out of `due` without a search).
    waiting: HashMap<OrderId, (UserId, Option<Timestamp>)>,
    per_customer: HashMap<UserId, u32>,
    /// Confirmed orders by the time their payment is due; an order leaves
    /// when it is taken as due, or stops waiting.
    due: BTreeSet<(Timestamp, OrderId)>,
}

impl Unsettled {
    pub fn new(limit: u32, window: TimeDelta) -> Self {
        Self {
            limit,
            window,
            waiting: HashMap::new(),
            per_customer: HashMap::new(),
            due: BTreeSet::new(),
        }
    }

    /// Folds `event` in; for a placement, whether it is admitted (a refused
    /// order is not counted).
    pub fn observe(&mut self, event: &OrderEvent) -> Admission {
        match event {
            OrderEvent::Placed {
                order_id, customer_id, ..
            } => self.admit(*order_id, *customer_id),
            OrderEvent::Confirmed {
                order_id,
                customer_id,
                at,
                payment_due,
                ..
            } => {
                if !self.waiting.contains_key(order_id) {
                    self.count(*order_id, *customer_id);
                }
                self.schedule(*order_id, payment_due.unwrap_or(*at + self.window));
                Admission::NotAPlacement
            }
            OrderEvent::PaymentSettled { order_id, .. }
            | OrderEvent::Rejected { order_id, .. }
            | OrderEvent::Refused { order_id, .. }
            | OrderEvent::Cancelled { order_id, .. } => {
                self.forget(*order_id);
                Admission::NotAPlacement
            }
            OrderEvent::PaymentRefunded { .. } | OrderEvent::Closed { .. } => Admission::NotAPlacement,
        }
    }

    fn admit(&mut self, order_id: OrderId, customer_id: UserId) -> Admission {
        if self.waiting.contains_key(&order_id) {
            return Admission::NotAPlacement;
        }
        if self
            .per_customer
            .get(&customer_id)
            .is_some_and(|count| *count >= self.limit)
        {
            return Admission::Refused(Refusal::TooManyUnsettledOrders { limit: self.limit });
        }
        self.count(order_id, customer_id);
        Admission::Admitted
    }

    fn count(&mut self, order_id: OrderId, customer_id: UserId) {
        *self.per_customer.entry(customer_id).or_default() += 1;
        self.waiting.insert(order_id, (customer_id, None));
    }

    /// Schedules the counted order `order_id` to fall due at `due`.
    fn schedule(&mut self, order_id: OrderId, due: Timestamp) {
        let Some((_, scheduled)) = self.waiting.get_mut(&order_id) else {
            return;
        };
        if let Some(before) = scheduled.replace(due) {
            self.due.remove(&(before, order_id));
        }
        self.due.insert((due, order_id));
    }

    /// Stops counting `order_id`: it is no longer waiting, or it is held
    /// back for an operator.
    pub fn forget(&mut self, order_id: OrderId) {
        let Some((customer_id, due)) = self.waiting.remove(&order_id) else {
            return;
        };
        if let Some(due) = due {
            self.due.remove(&(due, order_id));
        }
        if let Some(count) = self.per_customer.get_mut(&customer_id) {
            *count -= 1;
            if *count == 0 {
                self.per_customer.remove(&customer_id);
            }
        }
    }

    /// Whether `order_id` is counted.
    pub fn holds(&self, order_id: OrderId) -> bool {
        self.waiting.contains_key(&order_id)
    }

    /// When the next payment falls due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.due.first().map(|(due, _)| *due)
    }

    /// The orders whose payment is due by `now`, taken out of the schedule
    /// (each is asked to expire once; it stays counted until its
    /// cancellation, or its payment, is observed).
    pub fn take_due(&mut self, now: Timestamp) -> Vec<OrderId> {
        let mut taken = Vec::new();
        while let Some(&(due, order_id)) = self.due.first()
            && due <= now
        {
            self.due.pop_first();
            taken.push(order_id);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{Customer, OrderLines, ShippingAddress};

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn user(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn order(n: u128) -> OrderId {
        OrderId::from_uuid(uuid::Uuid::from_u128(0x100 + n))
    }

    fn placed(n: u128, customer: UserId) -> OrderEvent {
        OrderEvent::Placed {
            order_id: order(n),
            customer_id: customer,
            lines: OrderLines::parse(&[(crate::ids::ProductId::from_uuid(uuid::Uuid::from_u128(1)), 1)]).unwrap(),
            customer: Customer::parse(None, None, "0812345678").unwrap(),
            shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "Thailand", "10110").unwrap(),
            at: at(0),
        }
    }

    fn confirmed(n: u128, customer: UserId, at_s: i64, due: Option<i64>) -> OrderEvent {
        OrderEvent::Confirmed {
            order_id: order(n),
            customer_id: customer,
            lines: vec![],
            total: crate::money::Money::from_minor_units(100),
            at: at(at_s),
            payment_due: due.map(at),
        }
    }

    fn settled(n: u128, customer: UserId) -> OrderEvent {
        OrderEvent::PaymentSettled {
            order_id: order(n),
            customer_id: customer,
            reference: crate::order::PaymentReference::parse("pi_1").unwrap(),
            amount: crate::money::Money::from_minor_units(100),
            at: at(5),
        }
    }

    #[test]
    fn a_customer_at_the_limit_is_refused_and_a_settled_order_frees_a_place() {
        let mut ledger = Unsettled::new(2, TimeDelta::minutes(30));
        let (alice, bob) = (user(1), user(2));
        assert_eq!(ledger.observe(&placed(1, alice)), Admission::Admitted);
        assert_eq!(ledger.observe(&placed(2, alice)), Admission::Admitted);
        let refused = Admission::Refused(Refusal::TooManyUnsettledOrders { limit: 2 });
        assert_eq!(ledger.observe(&placed(3, alice)), refused);
        assert!(!ledger.holds(order(3)), "a refused order is not counted");
        assert_eq!(
            ledger.observe(&placed(4, bob)),
            Admission::Admitted,
            "the limit is per customer"
        );
        // Confirmed orders still wait for their payment.
        ledger.observe(&confirmed(1, alice, 1, Some(100)));
        assert_eq!(ledger.observe(&placed(5, alice)), refused);
        ledger.observe(&settled(1, alice));
        assert_eq!(ledger.observe(&placed(6, alice)), Admission::Admitted);
        assert_eq!(
            ledger.observe(&placed(6, alice)),
            Admission::NotAPlacement,
            "seen twice, counted once"
        );
    }

    #[test]
    fn due_orders_are_taken_once_in_due_order_and_paid_ones_never() {
        let mut ledger = Unsettled::new(5, TimeDelta::seconds(60));
        let alice = user(1);
        for n in 1..=3 {
            ledger.observe(&placed(n, alice));
        }
        ledger.observe(&confirmed(1, alice, 0, Some(30)));
        // Confirmed before due times were recorded: the window counts.
        ledger.observe(&confirmed(2, alice, 0, None));
        ledger.observe(&confirmed(3, alice, 0, Some(10)));
        assert_eq!(ledger.next_due(), Some(at(10)));
        ledger.observe(&settled(3, alice));
        assert_eq!(ledger.next_due(), Some(at(30)), "a paid order is never due");
        assert_eq!(ledger.take_due(at(29)), vec![]);
        assert_eq!(ledger.take_due(at(60)), vec![order(1), order(2)]);
        assert_eq!(ledger.take_due(at(1000)), vec![], "taken once");
        assert!(ledger.holds(order(1)), "counted until its cancellation is seen");
    }

    #[test]
    fn forgetting_an_order_frees_its_place_and_its_schedule() {
        let mut ledger = Unsettled::new(1, TimeDelta::seconds(60));
        let alice = user(1);
        ledger.observe(&placed(1, alice));
        ledger.observe(&confirmed(1, alice, 0, Some(5)));
        ledger.forget(order(1));
        assert_eq!(ledger.next_due(), None);
        assert_eq!(ledger.observe(&placed(2, alice)), Admission::Admitted);
    }

    #[test]
    fn a_confirmation_counts_an_order_whose_placement_was_not_counted() {
        let mut ledger = Unsettled::new(1, TimeDelta::seconds(60));
        let alice = user(1);
        // Placed before the ledger started reading, confirmed after.
        ledger.observe(&confirmed(1, alice, 0, Some(5)));
        assert!(ledger.holds(order(1)));
        assert_eq!(ledger.next_due(), Some(at(5)));
        let refused = Admission::Refused(Refusal::TooManyUnsettledOrders { limit: 1 });
        assert_eq!(ledger.observe(&placed(2, alice)), refused);
        ledger.observe(&settled(1, alice));
        assert_eq!(ledger.observe(&placed(3, alice)), Admission::Admitted);
    }
}
