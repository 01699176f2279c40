//! Orders with their lines: status, payment, totals, price snapshots,
//! rejection and refusal reasons, the payment's reference and deadline,
//! timestamps.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::Timestamp;
use domain::ids::ProductId;
use domain::money::Money;
use domain::order::{
    Customer, LineFailure, OrderEvent, OrderLines, OrderStatus, PaymentReference, PaymentStatus, PricedLine, Refusal,
    ShippingAddress,
};
use domain::quantity::Quantity;
use domain::text::Reason;
use event_store::RecordedEvent;
use uuid::Uuid;
use views::tables::{order_lines, orders};

use crate::generations::Writer;
use crate::projection::{ApplyError, Key, Projection, Table, decode_all};
use crate::rows;

pub struct Orders;

/// Rejection reasons as the query API reads them back: the domain's own
/// serde form, so both sides share one definition.
fn failures_json(failures: &[LineFailure]) -> String {
    serde_json::to_string(failures).expect("line failures serialize to JSON")
}

/// A refusal as the query API reads it back: the domain's serde form.
fn refusal_json(refusal: &Refusal) -> String {
    serde_json::to_string(refusal).expect("a refusal serializes to JSON")
}

/// An order's rows as a batch leaves them.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRows {
    pub header: orders::Model,
    /// Every line, when the batch changed them (placed or priced); `None`
    /// when the lines in the view stay as they are.
    pub lines: Option<Vec<order_lines::Model>>,
}

/// A line as placed: names and prices come with the confirmation.
fn unpriced_line(order_id: Uuid, line_no: usize, product_id: ProductId, quantity: Quantity) -> order_lines::Model {
    order_lines::Model {
        order_id,
        line_no: line_no as i32,
        product_id: product_id.as_uuid(),
        sku: None,
        name: None,
        quantity: quantity.get() as i32,
        unit_price_minor: None,
        line_total_minor: None,
    }
}

/// The order's rows after `event`; `None` while the order has not been
/// placed. Placing (again) starts the rows afresh.
pub fn evolve(order: Option<OrderRows>, event: &OrderEvent) -> Option<OrderRows> {
    match (order, event) {
        (
            _,
            OrderEvent::Placed {
                order_id,
                customer_id,
                lines,
                customer,
                shipping,
                at,
            },
        ) => Some(placed(
            order_id.as_uuid(),
            customer_id.as_uuid(),
            lines,
            customer,
            shipping,
            *at,
        )),
        (None, _) => None,
        (
            Some(rows),
            OrderEvent::Confirmed {
                lines,
                total,
                at,
                payment_due,
                ..
            },
        ) => Some(confirmed(rows, lines, *total, *at, *payment_due)),
        (Some(OrderRows { header, lines }), event) => Some(OrderRows {
            header: header_after(header, event),
            lines,
        }),
    }
}

/// The header after an event that leaves the lines as they are (placing
/// and confirming write lines: [`evolve`] takes those). Each ends the
/// payment window, if one was running.
fn header_after(mut header: orders::Model, event: &OrderEvent) -> orders::Model {
    match event {
        OrderEvent::Placed { .. } | OrderEvent::Confirmed { .. } => return header,
        OrderEvent::Rejected { failures, at, .. } => {
            header = stand(header, OrderStatus::Rejected, PaymentStatus::Void, *at);
            header.failures = Some(failures_json(failures));
        }
        OrderEvent::Refused { refusal, at, .. } => {
            header = stand(header, OrderStatus::Rejected, PaymentStatus::Void, *at);
            header.refusal = Some(refusal_json(refusal));
        }
        OrderEvent::Cancelled { reason, at, .. } => header = cancelled(header, reason, *at),
        OrderEvent::PaymentSettled { reference, at, .. } => header = settled(header, reference, *at),
        // Appended with the cancellation, whose status stays.
        OrderEvent::PaymentRefunded { at, .. } => {
            header.payment_status = PaymentStatus::Refunded.as_str().to_owned();
            header.updated_at = *at;
        }
        OrderEvent::Closed { at, .. } => {
            header = stand(header, OrderStatus::Closed, PaymentStatus::Settled, *at);
            header.closed_at = Some(*at);
        }
    }
    header.expires_at = None;
    header
}

/// `header` with `status` and `payment`, changed `at`.
fn stand(mut header: orders::Model, status: OrderStatus, payment: PaymentStatus, at: Timestamp) -> orders::Model {
    header.status = status.as_str().to_owned();
    header.payment_status = payment.as_str().to_owned();
    header.updated_at = at;
    header
}

fn placed(
    order_id: Uuid,
    customer_id: Uuid,
    lines: &OrderLines,
    customer: &Customer,
    shipping: &ShippingAddress,
    at: Timestamp,
) -> OrderRows {
    let header = orders::Model {
        order_id,
        customer_id,
        status: OrderStatus::Pending.as_str().to_owned(),
        payment_status: PaymentStatus::Pending.as_str().to_owned(),
        total_minor: None,
        customer_name: customer.name.as_ref().map(ToString::to_string),
        customer_email: customer.email.clone(),
        customer_phone: customer.phone.clone(),
        address: shipping.address.to_string(),
        city: shipping.city.to_string(),
        state: shipping.state.to_string(),
        country: shipping.country.to_string(),
        postal_code: shipping.postal_code.clone(),
        failures: None,
        cancel_reason: None,
        placed_at: at,
        updated_at: at,
        payment_reference: None,
        settled_at: None,
        closed_at: None,
        expires_at: None,
        refusal: None,
    };
    let lines = lines
        .as_slice()
        .iter()
        .enumerate()
        .map(|(line_no, line)| unpriced_line(order_id, line_no, line.product_id, line.quantity))
        .collect();
    OrderRows {
        header,
        lines: Some(lines),
    }
}

/// Priced lines come in the order's line order. An order confirmed before
/// payment windows existed shows no deadline: its event recorded none.
fn confirmed(
    rows: OrderRows,
    priced: &[PricedLine],
    total: Money,
    at: Timestamp,
    payment_due: Option<Timestamp>,
) -> OrderRows {
    let mut header = stand(rows.header, OrderStatus::Confirmed, PaymentStatus::Arranged, at);
    header.total_minor = Some(total.minor_units() as i64);
    header.expires_at = payment_due;
    let order_id = header.order_id;
    let lines = priced
        .iter()
        .enumerate()
        .map(|(line_no, line)| order_lines::Model {
            sku: Some(line.sku.to_string()),
            name: Some(line.name.to_string()),
            unit_price_minor: Some(line.unit_price.money().minor_units() as i64),
            line_total_minor: Some(line.line_total.minor_units() as i64),
            ..unpriced_line(order_id, line_no, line.product_id, line.quantity)
        })
        .collect();
    OrderRows {
        header,
        lines: Some(lines),
    }
}

/// An unpaid order's payment is called off; a settled one is given back
/// (its `PaymentRefunded` follows in the same append, and says so again
/// whichever batch it lands in).
fn cancelled(header: orders::Model, reason: &Reason, at: Timestamp) -> orders::Model {
    let paid = [PaymentStatus::Settled, PaymentStatus::Refunded].map(PaymentStatus::as_str);
    let payment = if paid.contains(&header.payment_status.as_str()) {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::Cancelled
    };
    let mut header = stand(header, OrderStatus::Cancelled, payment, at);
    header.cancel_reason = Some(reason.to_string());
    header
}

fn settled(header: orders::Model, reference: &PaymentReference, at: Timestamp) -> orders::Model {
    let mut header = stand(header, OrderStatus::Confirmed, PaymentStatus::Settled, at);
    header.payment_reference = Some(reference.to_string());
    header.settled_at = Some(at);
    header
}

/// The tables it owns.
const TABLES: &[Table] = &[
    Table {
        name: "orders",
        key: &[Key::uuid("order_id")],
    },
    Table {
        name: "order_lines",
        key: &[Key::uuid("order_id"), Key::integer("line_no")],
    },
];

#[async_trait]
impl Projection for Orders {
    fn name(&self) -> &'static str {
        views::projections::ORDERS
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    async fn apply(&self, writer: &Writer<'_>, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let events = decode_all::<OrderEvent>(events)?;
        let ids = events.iter().map(|event| event.order_id().as_uuid());
        let headers = rows::load::<orders::Entity, _>(writer, orders::Column::OrderId, ids, |row| row.order_id).await?;
        let mut orders: HashMap<Uuid, OrderRows> = headers
            .into_iter()
            .map(|(id, header)| (id, OrderRows { header, lines: None }))
            .collect();
        for event in &events {
            let id = event.order_id().as_uuid();
            if let Some(rows) = evolve(orders.remove(&id), event) {
                orders.insert(id, rows);
            }
        }
        let (headers, lines): (Vec<_>, Vec<_>) = orders.into_values().map(|rows| (rows.header, rows.lines)).unzip();
        rows::upsert::<orders::Entity>(writer, headers).await?;
        rows::upsert::<order_lines::Entity>(writer, lines.into_iter().flatten().flatten()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::ids::{OrderId, ProductId, UserId};
    use domain::money::Price;
    use domain::order::{Customer, OrderLines, PaymentReference, PricedLine, Refusal, ShippingAddress};
    use domain::product::{ProductName, Sku};
    use domain::text::Reason;

    use super::*;

    struct Order {
        order_id: OrderId,
        customer_id: UserId,
        product_id: ProductId,
        at: domain::Timestamp,
    }

    impl Order {
        fn new() -> Self {
            Self {
                order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
                customer_id: UserId::from_uuid(uuid::Uuid::now_v7()),
                product_id: ProductId::for_sku(&Sku::parse("LAMP-1").unwrap()),
                at: chrono::Utc::now(),
            }
        }

        fn lines(&self) -> OrderLines {
            OrderLines::parse(&[(self.product_id, 2)]).unwrap()
        }

        fn placed(&self) -> OrderEvent {
            OrderEvent::Placed {
                order_id: self.order_id,
                customer_id: self.customer_id,
                lines: self.lines(),
                customer: Customer::parse(Some("Ann"), None, "0812345678").unwrap(),
                shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "TH", "10110").unwrap(),
                at: self.at,
            }
        }

        fn confirmed(&self) -> OrderEvent {
            OrderEvent::Confirmed {
                order_id: self.order_id,
                customer_id: self.customer_id,
                lines: vec![PricedLine {
                    product_id: self.product_id,
                    sku: Sku::parse("LAMP-1").unwrap(),
                    name: ProductName::parse("Lamp").unwrap(),
                    quantity: self.lines().as_slice()[0].quantity,
                    unit_price: Price::from_minor_units(1_250).unwrap(),
                    line_total: Price::from_minor_units(2_500).unwrap().money(),
                }],
                total: Price::from_minor_units(2_500).unwrap().money(),
                at: self.at + chrono::Duration::seconds(1),
                payment_due: Some(self.at + chrono::Duration::minutes(30)),
            }
        }

        fn confirmed_before_payment_windows(&self) -> OrderEvent {
            match self.confirmed() {
                OrderEvent::Confirmed {
                    order_id,
                    customer_id,
                    lines,
                    total,
                    at,
                    ..
                } => OrderEvent::Confirmed {
                    order_id,
                    customer_id,
                    lines,
                    total,
                    at,
                    payment_due: None,
                },
                _ => unreachable!(),
            }
        }

        fn settled(&self) -> OrderEvent {
            OrderEvent::PaymentSettled {
                order_id: self.order_id,
                customer_id: self.customer_id,
                reference: PaymentReference::parse("pi_3Nx").unwrap(),
                amount: Price::from_minor_units(2_500).unwrap().money(),
                at: self.at + chrono::Duration::seconds(3),
            }
        }

        fn refunded(&self) -> OrderEvent {
            OrderEvent::PaymentRefunded {
                order_id: self.order_id,
                customer_id: self.customer_id,
                reference: PaymentReference::parse("pi_3Nx").unwrap(),
                amount: Price::from_minor_units(2_500).unwrap().money(),
                at: self.at + chrono::Duration::seconds(4),
            }
        }

        fn closed(&self) -> OrderEvent {
            OrderEvent::Closed {
                order_id: self.order_id,
                customer_id: self.customer_id,
                at: self.at + chrono::Duration::seconds(5),
            }
        }

        fn refused(&self) -> OrderEvent {
            OrderEvent::Refused {
                order_id: self.order_id,
                customer_id: self.customer_id,
                refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
                at: self.at + chrono::Duration::seconds(1),
            }
        }

        fn cancelled(&self) -> OrderEvent {
            OrderEvent::Cancelled {
                order_id: self.order_id,
                customer_id: self.customer_id,
                lines: self.lines(),
                reason: Reason::parse("changed my mind").unwrap(),
                at: self.at + chrono::Duration::seconds(2),
            }
        }
    }

    #[test]
    fn confirmation_prices_the_lines_placed() {
        let order = Order::new();
        let rows = [order.placed(), order.confirmed()].iter().fold(None, evolve).unwrap();
        assert_eq!(
            (rows.header.status.as_str(), rows.header.total_minor),
            ("confirmed", Some(2_500))
        );
        let lines = rows.lines.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (
                lines[0].line_no,
                lines[0].quantity,
                lines[0].unit_price_minor,
                lines[0].sku.as_deref()
            ),
            (0, 2, Some(1_250), Some("LAMP-1"))
        );
    }

    #[test]
    fn a_cancellation_of_a_stored_order_leaves_its_lines_alone() {
        let order = Order::new();
        let placed = evolve(None, &order.placed()).unwrap();
        let stored = OrderRows {
            header: placed.header,
            lines: None,
        };
        let rows = evolve(Some(stored), &order.cancelled()).unwrap();
        assert_eq!(
            (rows.header.status.as_str(), rows.header.payment_status.as_str()),
            ("cancelled", "cancelled")
        );
        assert_eq!(rows.header.cancel_reason.as_deref(), Some("changed my mind"));
        assert_eq!(rows.header.placed_at, order.at);
        assert_eq!(rows.lines, None);
    }

    #[test]
    fn events_of_an_order_never_placed_make_no_rows() {
        let order = Order::new();
        assert_eq!([order.confirmed(), order.cancelled()].iter().fold(None, evolve), None);
    }

    /// The header after `events`, folded from nothing.
    fn header(events: &[OrderEvent]) -> orders::Model {
        events.iter().fold(None, evolve).unwrap().header
    }

    /// The header as a later batch finds it: stored, without its lines.
    fn stored(rows: Option<OrderRows>) -> Option<OrderRows> {
        rows.map(|rows| OrderRows {
            header: rows.header,
            lines: None,
        })
    }

    fn stands(header: &orders::Model) -> (&str, &str) {
        (header.status.as_str(), header.payment_status.as_str())
    }

    #[test]
    fn a_confirmation_shows_the_payment_deadline_its_event_recorded() {
        let order = Order::new();
        let confirmed = header(&[order.placed(), order.confirmed()]);
        assert_eq!(confirmed.expires_at, Some(order.at + chrono::Duration::minutes(30)));
        let older = header(&[order.placed(), order.confirmed_before_payment_windows()]);
        assert_eq!((stands(&older), older.expires_at), (("confirmed", "arranged"), None));
    }

    #[test]
    fn a_settled_payment_records_its_reference_and_time_and_ends_the_window() {
        let order = Order::new();
        let settled = header(&[order.placed(), order.confirmed(), order.settled()]);
        assert_eq!(stands(&settled), ("confirmed", "settled"));
        assert_eq!(settled.payment_reference.as_deref(), Some("pi_3Nx"));
        assert_eq!(settled.settled_at, Some(order.at + chrono::Duration::seconds(3)));
        assert_eq!(settled.expires_at, None);
        assert_eq!(settled.updated_at, order.at + chrono::Duration::seconds(3));
    }

    #[test]
    fn a_closed_order_keeps_its_payment_and_records_when_it_closed() {
        let order = Order::new();
        let closed = header(&[order.placed(), order.confirmed(), order.settled(), order.closed()]);
        assert_eq!(stands(&closed), ("closed", "settled"));
        assert_eq!(closed.closed_at, Some(order.at + chrono::Duration::seconds(5)));
        assert_eq!(closed.payment_reference.as_deref(), Some("pi_3Nx"));
        assert_eq!(closed.expires_at, None);
    }

    #[test]
    fn an_unpaid_order_cancels_to_a_cancelled_payment_and_no_deadline() {
        let order = Order::new();
        let cancelled = header(&[order.placed(), order.confirmed(), order.cancelled()]);
        assert_eq!(stands(&cancelled), ("cancelled", "cancelled"));
        assert_eq!(cancelled.expires_at, None);
        assert_eq!(cancelled.payment_reference, None);
    }

    /// `[OrderCancelled, PaymentRefunded]` are appended together; a batch
    /// may end between them, or before them, and the row ends the same.
    #[test]
    fn a_settled_order_cancels_to_refunded_wherever_a_batch_ends() {
        let order = Order::new();
        let events = [
            order.placed(),
            order.confirmed(),
            order.settled(),
            order.cancelled(),
            order.refunded(),
        ];
        let whole = events.iter().fold(None, evolve).unwrap().header;
        assert_eq!(stands(&whole), ("cancelled", "refunded"));
        assert_eq!(whole.payment_reference.as_deref(), Some("pi_3Nx"));
        for boundary in 1..events.len() {
            let (first, second) = events.split_at(boundary);
            let rows = second.iter().fold(stored(first.iter().fold(None, evolve)), evolve);
            assert_eq!(rows.unwrap().header, whole, "a batch ending after event {boundary}");
        }
        let before_the_refund = header(&events[..4]);
        assert_eq!(stands(&before_the_refund), ("cancelled", "refunded"));
    }

    #[test]
    fn a_refused_order_is_rejected_with_a_void_payment_and_keeps_its_refusal() {
        let order = Order::new();
        let refused = header(&[order.placed(), order.refused()]);
        assert_eq!(stands(&refused), ("rejected", "void"));
        let refusal: Refusal = serde_json::from_str(refused.refusal.as_deref().unwrap()).unwrap();
        assert_eq!(refusal, Refusal::TooManyUnsettledOrders { limit: 5 });
        assert_eq!((refused.failures, refused.expires_at), (None, None));
    }
}
