use super::*;
use crate::Timestamp;
use crate::ids::UserId;
use crate::money::{Money, Price};
use crate::order::{Customer, OrderLines, ShippingAddress};
use crate::product::{ProductName, Sku};
use crate::quantity::StockLevel;
use crate::text::Reason;

fn now() -> Timestamp {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn order_id() -> OrderId {
    OrderId::from_uuid(uuid::Uuid::from_u128(0x0de))
}

fn customer_id() -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0xa))
}

fn product(n: u128) -> ProductId {
    ProductId::from_uuid(uuid::Uuid::from_u128(n))
}

fn quantity(units: i64) -> Quantity {
    Quantity::parse_field("q", units).unwrap()
}

fn placed() -> OrderEvent {
    OrderEvent::Placed {
        order_id: order_id(),
        customer_id: customer_id(),
        lines: OrderLines::parse(&[(product(1), 2), (product(2), 3)]).unwrap(),
        customer: Customer::parse(None, None, "0812345678").unwrap(),
        shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "Thailand", "10110").unwrap(),
        at: now(),
    }
}

fn reserved(n: u128, units: i64) -> ProductEvent {
    ProductEvent::StockReserved {
        product_id: product(n),
        order_id: order_id(),
        quantity: quantity(units),
        unit_price: Price::from_minor_units(100 * n as u64).unwrap(),
        sku: Sku::parse(&format!("SKU-{n}")).unwrap(),
        name: ProductName::parse("Thing").unwrap(),
        available: StockLevel::default(),
        at: now(),
    }
}

fn refused(n: u128, units: i64) -> ProductEvent {
    ProductEvent::StockReservationRefused {
        product_id: product(n),
        order_id: order_id(),
        requested: quantity(units),
        available: StockLevel::parse_field("s", 1).unwrap(),
        at: now(),
    }
}

fn released(n: u128, units: i64) -> ProductEvent {
    ProductEvent::StockReleased {
        product_id: product(n),
        order_id: order_id(),
        quantity: quantity(units),
        available: StockLevel::parse_field("s", 10).unwrap(),
        at: now(),
    }
}

fn confirmed() -> OrderEvent {
    OrderEvent::Confirmed {
        order_id: order_id(),
        customer_id: customer_id(),
        lines: vec![],
        total: Money::ZERO,
        at: now(),
        payment_due: None,
    }
}

fn rejected() -> OrderEvent {
    OrderEvent::Rejected {
        order_id: order_id(),
        customer_id: customer_id(),
        failures: vec![],
        at: now(),
    }
}

fn cancelled() -> OrderEvent {
    OrderEvent::Cancelled {
        order_id: order_id(),
        customer_id: customer_id(),
        lines: OrderLines::parse(&[(product(1), 2), (product(2), 3)]).unwrap(),
        reason: Reason::parse("no").unwrap(),
        at: now(),
    }
}

fn order_refused() -> OrderEvent {
    OrderEvent::Refused {
        order_id: order_id(),
        customer_id: customer_id(),
        refusal: crate::order::Refusal::TooManyUnsettledOrders { limit: 5 },
        at: now(),
    }
}

fn payment_settled() -> OrderEvent {
    OrderEvent::PaymentSettled {
        order_id: order_id(),
        customer_id: customer_id(),
        reference: crate::order::PaymentReference::parse("pi_1").unwrap(),
        amount: Money::ZERO,
        at: now(),
    }
}

fn closed() -> OrderEvent {
    OrderEvent::Closed {
        order_id: order_id(),
        customer_id: customer_id(),
        at: now(),
    }
}

/// Runs the saga over `events` and returns the final state with the commands
/// that followed the last event.
fn run(events: &[SagaEvent<'_>]) -> (SagaState, Vec<SagaCommand>) {
    let mut state = SagaState::Idle;
    let mut commands = vec![];
    for event in events {
        (state, commands) = step(state, *event);
    }
    (state, commands)
}

fn release(n: u128) -> SagaCommand {
    SagaCommand::Release {
        product_id: product(n),
        order_id: order_id(),
    }
}

#[test]
fn a_placed_order_reserves_every_line() {
    let placed = placed();
    let (_, commands) = run(&[SagaEvent::Order(&placed)]);
    assert_eq!(
        commands,
        vec![
            SagaCommand::Reserve {
                product_id: product(1),
                order_id: order_id(),
                quantity: quantity(2)
            },
            SagaCommand::Reserve {
                product_id: product(2),
                order_id: order_id(),
                quantity: quantity(3)
            },
        ]
    );
}

#[test]
fn waits_until_every_line_is_answered() {
    let (placed, first) = (placed(), reserved(1, 2));
    let (_, commands) = run(&[SagaEvent::Order(&placed), SagaEvent::Product(&first)]);
    assert_eq!(commands, vec![]);
}

#[test]
fn all_reserved_confirms_with_the_reserved_prices_in_line_order() {
    let (placed, second, first) = (placed(), reserved(2, 3), reserved(1, 2));
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&second),
        SagaEvent::Product(&first),
    ]);
    let [SagaCommand::Confirm { order_id: id, lines }] = &commands[..] else {
        panic!("expected a confirmation, got {commands:?}")
    };
    assert_eq!(*id, order_id());
    let prices: Vec<_> = lines
        .iter()
        .map(|line| (line.product_id, line.unit_price.money().minor_units()))
        .collect();
    assert_eq!(prices, vec![(product(1), 100), (product(2), 200)]);
}

#[test]
fn a_refusal_rejects_with_the_reason_per_product() {
    let (placed, first, second) = (placed(), reserved(1, 2), refused(2, 3));
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Product(&second),
    ]);
    assert_eq!(
        commands,
        vec![SagaCommand::Reject {
            order_id: order_id(),
            failures: vec![LineFailure {
                product_id: product(2),
                reason: RejectionReason::InsufficientStock {
                    requested: quantity(3),
                    available: StockLevel::parse_field("s", 1).unwrap(),
                },
            }],
        }]
    );
}

#[test]
fn a_missing_product_rejects_as_not_found() {
    let (placed, first) = (placed(), reserved(1, 2));
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::ProductMissing {
            order_id: order_id(),
            product_id: product(2),
        },
        SagaEvent::Product(&first),
    ]);
    assert_eq!(
        commands,
        vec![SagaCommand::Reject {
            order_id: order_id(),
            failures: vec![LineFailure {
                product_id: product(2),
                reason: RejectionReason::ProductNotFound,
            }],
        }]
    );
}

#[test]
fn a_rejected_order_releases_what_was_reserved() {
    let (placed, first, second, rejected) = (placed(), reserved(1, 2), refused(2, 3), rejected());
    let (state, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Product(&second),
        SagaEvent::Order(&rejected),
    ]);
    assert_eq!(commands, vec![release(1)]);
    assert!(matches!(state, SagaState::Ended(_)));
}

#[test]
fn an_order_refused_by_another_runner_releases_what_this_one_reserved() {
    let (placed, first, refused) = (placed(), reserved(1, 2), order_refused());
    let (state, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Order(&refused),
    ]);
    assert_eq!(commands, vec![release(1)]);
    assert!(matches!(state, SagaState::Ended(_)));
}

#[test]
fn paying_and_closing_ask_nothing_of_the_saga() {
    let (placed, first, second, confirmed) = (placed(), reserved(1, 2), reserved(2, 3), confirmed());
    let (paid, closed) = (payment_settled(), closed());
    for last in [&paid, &closed] {
        let (state, commands) = run(&[
            SagaEvent::Order(&placed),
            SagaEvent::Product(&first),
            SagaEvent::Product(&second),
            SagaEvent::Order(&confirmed),
            SagaEvent::Order(last),
        ]);
        assert_eq!(commands, vec![], "after {last:?}");
        assert!(
            matches!(state, SagaState::Confirmed(_)),
            "the stock stays held: {state:?}"
        );
    }
}

#[test]
fn a_cancelled_order_releases_every_line() {
    let (placed, first, second, confirmed, cancelled) =
        (placed(), reserved(1, 2), reserved(2, 3), confirmed(), cancelled());
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Product(&second),
        SagaEvent::Order(&confirmed),
        SagaEvent::Order(&cancelled),
    ]);
    assert_eq!(commands, vec![release(1), release(2)]);
}

#[test]
fn a_reservation_after_the_order_ended_is_released() {
    let (placed, second, rejected, late) = (placed(), refused(2, 3), rejected(), reserved(1, 2));
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&second),
        SagaEvent::Order(&rejected),
        SagaEvent::Product(&late),
    ]);
    assert_eq!(commands, vec![release(1)]);
}

#[test]
fn released_reservations_are_not_released_again() {
    let (placed, first, second, rejected, gone) = (placed(), reserved(1, 2), refused(2, 3), rejected(), released(1, 2));
    let (state, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Product(&second),
        SagaEvent::Order(&rejected),
        SagaEvent::Product(&gone),
    ]);
    assert_eq!(commands, vec![]);
    let SagaState::Ended(reservations) = state else {
        panic!("expected the saga to have ended")
    };
    assert!(reservations.reserved.is_empty());
}

#[test]
fn a_replayed_answer_after_the_decision_asks_nothing_more() {
    let (placed, first, second, confirmed) = (placed(), reserved(1, 2), reserved(2, 3), confirmed());
    let (_, commands) = run(&[
        SagaEvent::Order(&placed),
        SagaEvent::Product(&first),
        SagaEvent::Product(&second),
        SagaEvent::Order(&confirmed),
        SagaEvent::Product(&first),
    ]);
    assert_eq!(commands, vec![]);
}

#[test]
fn events_of_an_unknown_order_are_ignored() {
    let (first, confirmed) = (reserved(1, 2), confirmed());
    let (state, commands) = run(&[SagaEvent::Product(&first), SagaEvent::Order(&confirmed)]);
    assert_eq!(state, SagaState::Idle);
    assert_eq!(commands, vec![]);
}

#[test]
fn a_cancellation_releases_its_lines_even_without_saga_state() {
    let cancelled = cancelled();
    let (_, commands) = run(&[SagaEvent::Order(&cancelled)]);
    assert_eq!(commands, vec![release(1), release(2)]);
}

#[test]
fn routes_events_to_their_order() {
    let created = ProductEvent::Renamed {
        product_id: product(1),
        name: ProductName::parse("x").unwrap(),
        at: now(),
    };
    assert_eq!(SagaEvent::Product(&created).order_id(), None);
    let first = reserved(1, 2);
    assert_eq!(SagaEvent::Product(&first).order_id(), Some(order_id()));
    let placed = placed();
    assert_eq!(SagaEvent::Order(&placed).order_id(), Some(order_id()));
}

/// The saga state implied by the order stream `events`, as a runner that
/// does not remember the order reads it.
fn implied(events: &[OrderEvent]) -> SagaState {
    use crate::decider::Decider;
    SagaState::implied_by(&crate::order::Order::fold(events))
}

#[test]
fn a_reservation_for_a_forgotten_rejected_or_cancelled_order_is_released() {
    let late = reserved(1, 2);
    for ended in [
        vec![placed(), rejected()],
        vec![placed(), order_refused()],
        vec![placed(), confirmed(), cancelled()],
        vec![placed(), confirmed(), payment_settled(), cancelled()],
    ] {
        let state = implied(&ended);
        assert!(matches!(state, SagaState::Ended(_)), "{state:?}");
        let (_, commands) = step(state, SagaEvent::Product(&late));
        assert_eq!(commands, vec![release(1)], "after {ended:?}");
    }
}

#[test]
fn a_reservation_for_a_forgotten_confirmed_or_pending_order_asks_nothing() {
    let answer = reserved(1, 2);
    for order in [
        vec![],
        vec![placed()],
        vec![placed(), confirmed()],
        vec![placed(), confirmed(), payment_settled()],
        vec![placed(), confirmed(), payment_settled(), closed()],
    ] {
        let (_, commands) = step(implied(&order), SagaEvent::Product(&answer));
        assert_eq!(commands, vec![], "after {order:?}");
    }
    assert_eq!(implied(&[placed()]), SagaState::Idle);
}
