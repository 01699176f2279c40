use super::*;
use crate::ids::ProductId;
use crate::money::Price;
use crate::order::{OrderLine, RejectionReason};
use crate::product::{ProductName, Sku};
use crate::quantity::{Quantity, StockLevel};

fn now() -> Timestamp {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

/// When a payment confirmed at [`now`] is due.
fn due() -> Timestamp {
    now() + chrono::TimeDelta::minutes(30)
}

fn alice() -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0xa))
}

fn bob() -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0xb))
}

fn product(n: u128) -> ProductId {
    ProductId::from_uuid(uuid::Uuid::from_u128(n))
}

fn order_id() -> OrderId {
    OrderId::from_uuid(uuid::Uuid::from_u128(0x0de))
}

fn alices_order() -> PlacedOrder {
    PlacedOrder {
        order_id: order_id(),
        customer_id: alice(),
        lines: OrderLines::parse(&[(product(1), 2), (product(2), 1)]).unwrap(),
        customer: Customer::parse(Some("Alice"), Some("alice@example.com"), "0812345678").unwrap(),
        shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "Thailand", "10110").unwrap(),
    }
}

fn place() -> OrderCommand {
    OrderCommand::Place(PlaceOrder {
        order: alices_order(),
        now: now(),
    })
}

fn reserved(line: &OrderLine, unit_minor: u64) -> ReservedLine {
    ReservedLine {
        product_id: line.product_id,
        sku: Sku::parse(&format!("SKU-{}", line.product_id.as_uuid().as_u128())).unwrap(),
        name: ProductName::parse("Thing").unwrap(),
        quantity: line.quantity,
        unit_price: Price::from_minor_units(unit_minor).unwrap(),
    }
}

fn confirm_all(state: &OrderState) -> OrderCommand {
    let lines = state.placed().unwrap().lines.as_slice();
    OrderCommand::Confirm {
        lines: vec![reserved(&lines[1], 300), reserved(&lines[0], 1_050)],
        now: now(),
        payment_due: due(),
    }
}

fn reject() -> OrderCommand {
    OrderCommand::Reject {
        failures: vec![LineFailure {
            product_id: product(2),
            reason: RejectionReason::InsufficientStock {
                requested: Quantity::parse_field("q", 1).unwrap(),
                available: StockLevel::default(),
            },
        }],
        now: now(),
    }
}

fn cancel(by: UserId) -> OrderCommand {
    OrderCommand::Cancel {
        requested_by: by,
        reason: Reason::parse("changed my mind").unwrap(),
        now: now(),
    }
}

/// Applies `commands` in turn from nothing and returns every event.
fn history(commands: &[fn(&OrderState) -> OrderCommand]) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    for command in commands {
        let state = Order::fold(&events);
        events.extend(Order::decide(&state, command(&state)).unwrap());
    }
    events
}

fn place_any(_: &OrderState) -> OrderCommand {
    place()
}

fn reject_any(_: &OrderState) -> OrderCommand {
    reject()
}

fn placed() -> Vec<OrderEvent> {
    history(&[place_any])
}

fn confirmed() -> Vec<OrderEvent> {
    history(&[place_any, confirm_all])
}

#[test]
fn places_a_pending_order() {
    let state = Order::fold(&placed());
    assert_eq!(state.status(), Some((OrderStatus::Pending, PaymentStatus::Pending)));
}

#[test]
fn placing_the_same_order_again_decides_nothing() {
    let state = Order::fold(&placed());
    assert_eq!(Order::decide(&state, place()), Ok(vec![]));
}

#[test]
fn placing_other_content_under_a_taken_id_is_refused() {
    let state = Order::fold(&placed());
    let other = OrderCommand::Place(PlaceOrder {
        order: PlacedOrder {
            lines: OrderLines::parse(&[(product(3), 1)]).unwrap(),
            ..alices_order()
        },
        now: now(),
    });
    assert_eq!(Order::decide(&state, other), Err(OrderError::IdTaken));
}

#[test]
fn confirms_with_a_price_snapshot_and_total_in_line_order() {
    let events = confirmed();
    let Some(OrderEvent::Confirmed { lines, total, .. }) = events.last() else {
        panic!("expected a confirmation, got {events:?}")
    };
    let summary: Vec<_> = lines
        .iter()
        .map(|line| (line.product_id, line.line_total.minor_units()))
        .collect();
    assert_eq!(summary, vec![(product(1), 2_100), (product(2), 300)]);
    assert_eq!(total.minor_units(), 2_400);
    assert_eq!(
        Order::fold(&events).status(),
        Some((OrderStatus::Confirmed, PaymentStatus::Arranged))
    );
}

#[test]
fn confirm_refuses_reservations_that_do_not_match_the_lines() {
    let state = Order::fold(&placed());
    let lines = state.placed().unwrap().lines.as_slice().to_vec();
    let mut wrong_quantity = reserved(&lines[0], 100);
    wrong_quantity.quantity = Quantity::parse_field("q", 7).unwrap();
    let cases = [
        vec![reserved(&lines[0], 100)],
        vec![reserved(&lines[0], 100), reserved(&lines[0], 100)],
        vec![wrong_quantity, reserved(&lines[1], 100)],
    ];
    for lines in cases {
        let command = OrderCommand::Confirm {
            lines: lines.clone(),
            now: now(),
            payment_due: due(),
        };
        assert_eq!(
            Order::decide(&state, command),
            Err(OrderError::ReservationMismatch),
            "case {lines:?}"
        );
    }
}

#[test]
fn confirm_and_reject_are_idempotent_and_exclusive() {
    let confirmed_state = Order::fold(&confirmed());
    assert_eq!(
        Order::decide(&confirmed_state, confirm_all(&confirmed_state)),
        Ok(vec![])
    );
    assert_eq!(
        Order::decide(&confirmed_state, reject()),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Confirmed,
            payment: PaymentStatus::Arranged,
            action: "rejected",
            cancelled_because: None,
        })
    );
    let rejected = history(&[place_any, reject_any]);
    let rejected_state = Order::fold(&rejected);
    assert_eq!(
        rejected_state.status(),
        Some((OrderStatus::Rejected, PaymentStatus::Void))
    );
    assert_eq!(Order::decide(&rejected_state, reject()), Ok(vec![]));
    assert_eq!(
        Order::decide(&rejected_state, confirm_all(&rejected_state)),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Rejected,
            payment: PaymentStatus::Void,
            action: "confirmed",
            cancelled_because: None,
        })
    );
}

#[test]
fn reject_needs_a_failure() {
    let state = Order::fold(&placed());
    let command = OrderCommand::Reject {
        failures: vec![],
        now: now(),
    };
    assert_eq!(Order::decide(&state, command), Err(OrderError::NoFailures));
}

#[test]
fn the_owner_cancels_a_confirmed_order_once_and_its_unpaid_payment_is_cancelled() {
    let mut events = confirmed();
    let state = Order::fold(&events);
    events.extend(Order::decide(&state, cancel(alice())).unwrap());
    let state = Order::fold(&events);
    assert_eq!(state.status(), Some((OrderStatus::Cancelled, PaymentStatus::Cancelled)));
    assert_eq!(Order::decide(&state, cancel(alice())), Ok(vec![]));
}

#[test]
fn nobody_else_cancels_an_order() {
    let state = Order::fold(&confirmed());
    assert_eq!(Order::decide(&state, cancel(bob())), Err(OrderError::NotOwner));
}

#[test]
fn only_confirmed_orders_can_be_cancelled() {
    let pending = Order::fold(&placed());
    assert_eq!(
        Order::decide(&pending, cancel(alice())),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Pending,
            payment: PaymentStatus::Pending,
            action: "cancelled",
            cancelled_because: None,
        })
    );
    let rejected = Order::fold(&history(&[place_any, reject_any]));
    assert_eq!(
        Order::decide(&rejected, cancel(alice())),
        Err(OrderError::InvalidTransition {
            status: OrderStatus::Rejected,
            payment: PaymentStatus::Void,
            action: "cancelled",
            cancelled_because: None,
        })
    );
}

#[test]
fn commands_on_a_missing_order_are_refused() {
    for command in [confirm_all_of_nothing(), reject(), cancel(alice())] {
        assert_eq!(
            Order::decide(&OrderState::NotPlaced, command.clone()),
            Err(OrderError::NotFound),
            "case {command:?}"
        );
    }
}

fn confirm_all_of_nothing() -> OrderCommand {
    OrderCommand::Confirm {
        lines: vec![],
        now: now(),
        payment_due: due(),
    }
}

#[test]
fn order_placed_has_a_stable_json_shape() {
    let encoded = crate::event::DomainEvent::encode(&placed()[0]).unwrap();
    assert_eq!(encoded.event_type, "OrderPlaced");
    let json: serde_json::Value = serde_json::from_slice(&encoded.data).unwrap();
    assert_eq!(json["lines"][0]["quantity"], 2);
    assert_eq!(json["customer"]["phone"], "0812345678");
    assert_eq!(json["shipping"]["postalCode"], "10110");
    assert_eq!(json["customerId"], alice().to_string());
}

mod lifecycle;
