//! Orders with their lines: status, payment, totals, price snapshots,
//! rejection reasons, timestamps.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::Timestamp;
use domain::ids::ProductId;
use domain::money::Money;
use domain::order::{
    Customer, LineFailure, OrderEvent, OrderLines, OrderStatus, PaymentStatus, PricedLine, ShippingAddress,
};
use domain::quantity::Quantity;
use domain::text::Reason;
use event_store::RecordedEvent;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;
use views::tables::{order_lines, orders};

use crate::projection::{ApplyError, Projection, decode_all};
use crate::rows;

pub struct Orders;

/// Rejection reasons as the query API reads them back: the domain's own
/// serde form, so both sides share one definition.
fn failures_json(failures: &[LineFailure]) -> String {
    serde_json::to_string(failures).expect("line failures serialize to JSON")
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
        (Some(rows), OrderEvent::Confirmed { lines, total, at, .. }) => Some(confirmed(rows, lines, *total, *at)),
        (Some(rows), OrderEvent::Rejected { failures, at, .. }) => Some(rejected(rows, failures, *at)),
        (Some(rows), OrderEvent::Cancelled { reason, at, .. }) => Some(cancelled(rows, reason, *at)),
        (Some(rows), _) => Some(rows),
    }
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

/// Priced lines come in the order's line order.
fn confirmed(rows: OrderRows, priced: &[PricedLine], total: Money, at: Timestamp) -> OrderRows {
    let OrderRows { mut header, .. } = rows;
    header.status = OrderStatus::Confirmed.as_str().to_owned();
    header.payment_status = PaymentStatus::Arranged.as_str().to_owned();
    header.total_minor = Some(total.minor_units() as i64);
    header.updated_at = at;
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

fn rejected(rows: OrderRows, failures: &[LineFailure], at: Timestamp) -> OrderRows {
    let OrderRows { mut header, lines } = rows;
    header.status = OrderStatus::Rejected.as_str().to_owned();
    header.payment_status = PaymentStatus::Void.as_str().to_owned();
    header.failures = Some(failures_json(failures));
    header.updated_at = at;
    OrderRows { header, lines }
}

fn cancelled(rows: OrderRows, reason: &Reason, at: Timestamp) -> OrderRows {
    let OrderRows { mut header, lines } = rows;
    header.status = OrderStatus::Cancelled.as_str().to_owned();
    header.payment_status = PaymentStatus::Refunded.as_str().to_owned();
    header.cancel_reason = Some(reason.to_string());
    header.updated_at = at;
    OrderRows { header, lines }
}

#[async_trait]
impl Projection for Orders {
    fn name(&self) -> &'static str {
        views::projections::ORDERS
    }

    fn tables(&self) -> &'static [&'static str] {
        &["order_lines", "orders"]
    }

    async fn apply(&self, transaction: &DatabaseTransaction, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let events = decode_all::<OrderEvent>(events)?;
        let ids = events.iter().map(|event| event.order_id().as_uuid());
        let headers =
            rows::load::<orders::Entity, _>(transaction, orders::Column::OrderId, ids, |row| row.order_id).await?;
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
        rows::upsert::<orders::Entity>(transaction, headers).await?;
        rows::upsert::<order_lines::Entity>(transaction, lines.into_iter().flatten().flatten()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::ids::{OrderId, ProductId, UserId};
    use domain::money::Price;
    use domain::order::{Customer, OrderLines, PricedLine, ShippingAddress};
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
            ("cancelled", "refunded")
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
}
