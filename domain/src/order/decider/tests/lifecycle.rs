//! Given/when/then for what follows a confirmation: settling the payment,
//! closing, cancelling in each state, the payment window, and the saga's
//! refusal. The order confirmed by [`confirmed`] totals 24.00.

use super::*;
use crate::order::{Payment, PaymentReference, Refusal, payment_window_expired};

fn reference(raw: &str) -> PaymentReference {
    PaymentReference::parse(raw).unwrap()
}

fn total() -> Money {
    Money::from_minor_units(2_400)
}

fn settle(raw: &str, amount: Money) -> OrderCommand {
    OrderCommand::Settle {
        reference: reference(raw),
        amount,
        now: now(),
    }
}

fn close() -> OrderCommand {
    OrderCommand::Close { now: now() }
}

fn expire_at(now: Timestamp) -> OrderCommand {
    OrderCommand::Expire {
        now,
        window: chrono::TimeDelta::minutes(30),
    }
}

/// `events`, then what `command` decides on them (which must succeed).
fn then(mut events: Vec<OrderEvent>, command: OrderCommand) -> Vec<OrderEvent> {
    let decided = Order::decide(&Order::fold(&events), command).unwrap();
    events.extend(decided);
    events
}

fn settled() -> Vec<OrderEvent> {
    then(confirmed(), settle("pi_1", total()))
}

fn closed() -> Vec<OrderEvent> {
    then(settled(), close())
}

fn refused() -> Vec<OrderEvent> {
    then(
        placed(),
        OrderCommand::Refuse {
            refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
            now: now(),
        },
    )
}

/// The refusal of `action` on an order in `status`/`payment`.
fn invalid(status: OrderStatus, payment: PaymentStatus, action: &'static str) -> OrderError {
    OrderError::InvalidTransition {
        status,
        payment,
        action,
        cancelled_because: None,
    }
}

#[test]
fn a_confirmation_records_when_its_payment_is_due() {
    let Some(OrderEvent::Confirmed { payment_due, .. }) = confirmed().pop() else {
        panic!("not confirmed")
    };
    assert_eq!(payment_due, Some(due()));
}

#[test]
fn settling_the_exact_total_records_the_payment() {
    let events = confirmed();
    let decided = Order::decide(&Order::fold(&events), settle("pi_1", total())).unwrap();
    assert_eq!(
        decided,
        vec![OrderEvent::PaymentSettled {
            order_id: order_id(),
            customer_id: alice(),
            reference: reference("pi_1"),
            amount: total(),
            at: now(),
        }]
    );
    let state = Order::fold(&then(events, settle("pi_1", total())));
    assert_eq!(state.status(), Some((OrderStatus::Confirmed, PaymentStatus::Settled)));
    assert_eq!(
        state.payment(),
        Some(&Payment {
            reference: reference("pi_1"),
            amount: total(),
            settled_at: now(),
        })
    );
}

#[test]
fn an_amount_other_than_the_total_is_refused_naming_the_total() {
    let state = Order::fold(&confirmed());
    for minor in [2_399, 2_401, 0] {
        assert_eq!(
            Order::decide(&state, settle("pi_1", Money::from_minor_units(minor))),
            Err(OrderError::AmountMismatch { total: total() }),
            "{minor}"
        );
    }
}

#[test]
fn the_same_reference_again_decides_nothing_in_every_later_state() {
    let refunded = then(settled(), cancel(alice()));
    for events in [settled(), closed(), refunded] {
        let state = Order::fold(&events);
        assert_eq!(Order::decide(&state, settle("pi_1", total())), Ok(vec![]), "{state:?}");
    }
}

#[test]
fn the_same_reference_with_another_amount_is_refused_naming_the_amount_paid() {
    for events in [settled(), closed()] {
        let state = Order::fold(&events);
        assert_eq!(
            Order::decide(&state, settle("pi_1", Money::from_minor_units(1))),
            Err(OrderError::AmountMismatch { total: total() })
        );
    }
}

#[test]
fn another_reference_after_settling_is_refused() {
    for events in [settled(), closed()] {
        let state = Order::fold(&events);
        assert_eq!(
            Order::decide(&state, settle("pi_2", total())),
            Err(OrderError::AlreadySettled)
        );
    }
}

#[test]
fn only_a_confirmed_order_can_be_settled() {
    let pending = Order::fold(&placed());
    assert_eq!(
        Order::decide(&pending, settle("pi_1", total())),
        Err(invalid(OrderStatus::Pending, PaymentStatus::Pending, "settled"))
    );
    let rejected = Order::fold(&history(&[place_any, reject_any]));
    assert_eq!(
        Order::decide(&rejected, settle("pi_1", total())),
        Err(invalid(OrderStatus::Rejected, PaymentStatus::Void, "settled"))
    );
    assert_eq!(
        Order::decide(&Order::fold(&refused()), settle("pi_1", total())),
        Err(invalid(OrderStatus::Rejected, PaymentStatus::Void, "settled"))
    );
    assert_eq!(
        Order::decide(&OrderState::NotPlaced, settle("pi_1", total())),
        Err(OrderError::NotFound)
    );
}

#[test]
fn a_cancelled_order_refuses_payment_saying_why_it_was_cancelled() {
    let expired = then(confirmed(), expire_at(due()));
    assert_eq!(
        Order::decide(&Order::fold(&expired), settle("pi_1", total())),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Cancelled,
            payment: PaymentStatus::Cancelled,
            action: "settled",
            cancelled_because: Some(payment_window_expired()),
        })
    );
}

#[test]
fn a_settled_order_closes_once() {
    let events = closed();
    assert_eq!(
        events.last(),
        Some(&OrderEvent::Closed {
            order_id: order_id(),
            customer_id: alice(),
            at: now(),
        })
    );
    let state = Order::fold(&events);
    assert_eq!(state.status(), Some((OrderStatus::Closed, PaymentStatus::Settled)));
    assert_eq!(Order::decide(&state, close()), Ok(vec![]));
}

#[test]
fn an_unsettled_order_cannot_be_closed() {
    let cases = [
        (placed(), OrderStatus::Pending, PaymentStatus::Pending),
        (confirmed(), OrderStatus::Confirmed, PaymentStatus::Arranged),
        (
            history(&[place_any, reject_any]),
            OrderStatus::Rejected,
            PaymentStatus::Void,
        ),
    ];
    for (events, status, payment) in cases {
        assert_eq!(
            Order::decide(&Order::fold(&events), close()),
            Err(invalid(status, payment, "closed"))
        );
    }
    let cancelled = then(confirmed(), cancel(alice()));
    assert!(matches!(
        Order::decide(&Order::fold(&cancelled), close()),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Cancelled,
            cancelled_because: Some(_),
            ..
        })
    ));
}

#[test]
fn cancelling_a_settled_order_refunds_its_payment_in_the_same_decision() {
    let decided = Order::decide(&Order::fold(&settled()), cancel(alice())).unwrap();
    assert!(matches!(decided[0], OrderEvent::Cancelled { .. }), "{decided:?}");
    assert_eq!(
        decided[1],
        OrderEvent::PaymentRefunded {
            order_id: order_id(),
            customer_id: alice(),
            reference: reference("pi_1"),
            amount: total(),
            at: now(),
        }
    );
    assert_eq!(decided.len(), 2);
    let state = Order::fold(&then(settled(), cancel(alice())));
    assert_eq!(state.status(), Some((OrderStatus::Cancelled, PaymentStatus::Refunded)));
    assert_eq!(Order::decide(&state, cancel(alice())), Ok(vec![]), "cancelled once");
}

#[test]
fn a_closed_order_cannot_be_cancelled() {
    assert_eq!(
        Order::decide(&Order::fold(&closed()), cancel(alice())),
        Err(invalid(OrderStatus::Closed, PaymentStatus::Settled, "cancelled"))
    );
}

#[test]
fn a_confirmed_order_expires_once_when_due_not_before() {
    let state = Order::fold(&confirmed());
    let a_second_early = due() - chrono::TimeDelta::seconds(1);
    assert_eq!(
        Order::decide(&state, expire_at(a_second_early)),
        Err(OrderError::NotDue { due: due() })
    );
    let decided = Order::decide(&state, expire_at(due())).unwrap();
    assert_eq!(
        decided,
        vec![OrderEvent::Cancelled {
            order_id: order_id(),
            customer_id: alice(),
            lines: alices_order().lines,
            reason: payment_window_expired(),
            at: due(),
        }]
    );
    let expired = Order::fold(&then(confirmed(), expire_at(due())));
    assert_eq!(
        expired.status(),
        Some((OrderStatus::Cancelled, PaymentStatus::Cancelled))
    );
    assert_eq!(Order::decide(&expired, expire_at(due())), Ok(vec![]), "expired once");
}

#[test]
fn an_order_confirmed_before_due_times_were_recorded_is_due_a_window_after_its_confirmation() {
    let mut events = confirmed();
    if let Some(OrderEvent::Confirmed { payment_due, .. }) = events.last_mut() {
        *payment_due = None;
    }
    let state = Order::fold(&events);
    let window = chrono::TimeDelta::minutes(10);
    let early = OrderCommand::Expire {
        now: now() + chrono::TimeDelta::minutes(9),
        window,
    };
    assert!(matches!(Order::decide(&state, early), Err(OrderError::NotDue { .. })));
    let on_time = OrderCommand::Expire {
        now: now() + window,
        window,
    };
    assert_eq!(Order::decide(&state, on_time).unwrap().len(), 1);
}

#[test]
fn paid_or_ended_orders_have_nothing_to_expire() {
    let late = due() + chrono::TimeDelta::days(1);
    for events in [
        settled(),
        closed(),
        then(confirmed(), cancel(alice())),
        history(&[place_any, reject_any]),
        refused(),
    ] {
        let state = Order::fold(&events);
        assert_eq!(Order::decide(&state, expire_at(late)), Ok(vec![]), "{state:?}");
    }
    assert_eq!(
        Order::decide(&Order::fold(&placed()), expire_at(late)),
        Err(invalid(OrderStatus::Pending, PaymentStatus::Pending, "expired"))
    );
}

#[test]
fn a_settle_and_an_expiry_on_the_same_state_cannot_both_stand() {
    // Both decided on one loaded state; the store appends one and the other
    // is decided again on what won (expected revision).
    let settled_first = Order::fold(&then(confirmed(), settle("pi_1", total())));
    assert_eq!(Order::decide(&settled_first, expire_at(due())), Ok(vec![]));
    let expired_first = Order::fold(&then(confirmed(), expire_at(due())));
    assert!(matches!(
        Order::decide(&expired_first, settle("pi_1", total())),
        Err(OrderError::InvalidTransition {
            cancelled_because: Some(reason),
            ..
        }) if reason == payment_window_expired()
    ));
}

#[test]
fn a_refused_order_is_rejected_with_its_payment_void_and_stays_so() {
    let events = refused();
    assert_eq!(
        events.last(),
        Some(&OrderEvent::Refused {
            order_id: order_id(),
            customer_id: alice(),
            refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
            at: now(),
        })
    );
    let state = Order::fold(&events);
    assert_eq!(state.status(), Some((OrderStatus::Rejected, PaymentStatus::Void)));
    let again = OrderCommand::Refuse {
        refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
        now: now(),
    };
    assert_eq!(Order::decide(&state, again), Ok(vec![]));
    assert!(matches!(
        Order::decide(&state, confirm_all(&state)),
        Err(OrderError::InvalidTransition {
            action: "confirmed",
            ..
        })
    ));
}

#[test]
fn a_late_confirmation_changes_nothing_once_paid_closed_or_cancelled() {
    for events in [settled(), closed(), then(confirmed(), cancel(alice()))] {
        let state = Order::fold(&events);
        assert_eq!(Order::decide(&state, confirm_all(&state)), Ok(vec![]), "{state:?}");
    }
}

/// A sample of every kind of order event.
fn every_kind_of_order_event() -> Vec<OrderEvent> {
    let mut events = then(settled(), cancel(alice()));
    events.extend(closed().pop());
    events.extend(refused().pop());
    events.extend(history(&[place_any, reject_any]).pop());
    events
}

#[test]
fn every_order_event_round_trips_through_the_store_encoding() {
    crate::event::assert_round_trips(&every_kind_of_order_event());
}

#[test]
fn the_decision_types_name_exactly_the_decisions() {
    let events = every_kind_of_order_event();
    for event in &events {
        let event_type = crate::event::DomainEvent::encode(event).unwrap().event_type;
        assert_eq!(
            OrderEvent::DECISION_TYPES.contains(&event_type.as_str()),
            event.is_decision(),
            "{event_type}"
        );
    }
    let decisions = events.iter().filter(|event| event.is_decision()).count();
    assert!(
        decisions >= OrderEvent::DECISION_TYPES.len(),
        "every decision among the samples"
    );
}

#[test]
fn an_order_confirmed_by_an_older_build_reads_without_a_due_time() {
    let json = serde_json::json!({
        "orderId": order_id(), "customerId": alice(), "lines": [], "total": 100,
        "at": "2023-11-14T22:13:20Z"
    });
    let decoded: OrderEvent =
        serde_json::from_value(serde_json::json!({"type": "OrderConfirmed", "data": json})).unwrap();
    assert!(matches!(decoded, OrderEvent::Confirmed { payment_due: None, .. }));
}
