//! Orders with their lines: status, payment, totals, price snapshots,
//! rejection reasons, timestamps.

use async_trait::async_trait;
use domain::order::{LineFailure, OrderEvent, RejectionReason};
use event_store::RecordedEvent;
use migrations::views::{order_lines, orders};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::projection::{ApplyError, Projection, decode};

pub struct Orders;

/// The failures as the query API shows them.
fn failures_json(failures: &[LineFailure]) -> String {
    let failures: Vec<serde_json::Value> = failures
        .iter()
        .map(|failure| match failure.reason {
            RejectionReason::ProductNotFound => serde_json::json!({
                "productId": failure.product_id,
                "reason": "productNotFound",
            }),
            RejectionReason::InsufficientStock { requested, available } => serde_json::json!({
                "productId": failure.product_id,
                "reason": "insufficientStock",
                "requested": requested.get(),
                "available": available.get(),
            }),
        })
        .collect();
    serde_json::Value::Array(failures).to_string()
}

#[async_trait]
impl Projection for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["order_lines", "orders"]
    }

    async fn apply(&self, transaction: &DatabaseTransaction, event: &RecordedEvent) -> Result<(), ApplyError> {
        let Some(event) = decode::<OrderEvent>(event)? else {
            return Ok(());
        };
        let order_id = event.order_id().as_uuid();
        let update = orders::Entity::update_many().filter(orders::Column::OrderId.eq(order_id));
        match event {
            OrderEvent::Placed {
                customer_id,
                lines,
                customer,
                shipping,
                at,
                ..
            } => {
                let header = orders::ActiveModel {
                    order_id: Set(order_id),
                    customer_id: Set(customer_id.as_uuid()),
                    status: Set("pending".to_owned()),
                    payment_status: Set("pending".to_owned()),
                    total_minor: Set(None),
                    customer_name: Set(customer.name.map(|n| n.to_string())),
                    customer_email: Set(customer.email),
                    customer_phone: Set(customer.phone),
                    address: Set(shipping.address.to_string()),
                    city: Set(shipping.city.to_string()),
                    state: Set(shipping.state.to_string()),
                    country: Set(shipping.country.to_string()),
                    postal_code: Set(shipping.postal_code),
                    failures: Set(None),
                    cancel_reason: Set(None),
                    placed_at: Set(at),
                    updated_at: Set(at),
                };
                orders::Entity::insert(header)
                    .on_conflict(OnConflict::column(orders::Column::OrderId).do_nothing().to_owned())
                    .exec_without_returning(transaction)
                    .await?;
                let rows = lines
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(line_no, line)| order_lines::ActiveModel {
                        order_id: Set(order_id),
                        line_no: Set(line_no as i32),
                        product_id: Set(line.product_id.as_uuid()),
                        sku: Set(None),
                        name: Set(None),
                        quantity: Set(line.quantity.get() as i32),
                        unit_price_minor: Set(None),
                        line_total_minor: Set(None),
                    });
                order_lines::Entity::insert_many(rows)
                    .on_conflict(
                        OnConflict::columns([order_lines::Column::OrderId, order_lines::Column::LineNo])
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(transaction)
                    .await?;
            }
            OrderEvent::Confirmed { lines, total, at, .. } => {
                update
                    .col_expr(orders::Column::Status, Expr::value("confirmed"))
                    .col_expr(orders::Column::PaymentStatus, Expr::value("arranged"))
                    .col_expr(orders::Column::TotalMinor, Expr::value(total.minor_units() as i64))
                    .col_expr(orders::Column::UpdatedAt, Expr::value(at))
                    .exec(transaction)
                    .await?;
                // Priced lines come in the order's line order.
                for (line_no, line) in lines.iter().enumerate() {
                    order_lines::Entity::update_many()
                        .col_expr(order_lines::Column::Sku, Expr::value(line.sku.to_string()))
                        .col_expr(order_lines::Column::Name, Expr::value(line.name.to_string()))
                        .col_expr(
                            order_lines::Column::UnitPriceMinor,
                            Expr::value(line.unit_price.money().minor_units() as i64),
                        )
                        .col_expr(
                            order_lines::Column::LineTotalMinor,
                            Expr::value(line.line_total.minor_units() as i64),
                        )
                        .filter(order_lines::Column::OrderId.eq(order_id))
                        .filter(order_lines::Column::LineNo.eq(line_no as i32))
                        .exec(transaction)
                        .await?;
                }
            }
            OrderEvent::Rejected { failures, at, .. } => {
                update
                    .col_expr(orders::Column::Status, Expr::value("rejected"))
                    .col_expr(orders::Column::PaymentStatus, Expr::value("void"))
                    .col_expr(orders::Column::Failures, Expr::value(failures_json(&failures)))
                    .col_expr(orders::Column::UpdatedAt, Expr::value(at))
                    .exec(transaction)
                    .await?;
            }
            OrderEvent::Cancelled { reason, at, .. } => {
                update
                    .col_expr(orders::Column::Status, Expr::value("cancelled"))
                    .col_expr(orders::Column::PaymentStatus, Expr::value("refunded"))
                    .col_expr(orders::Column::CancelReason, Expr::value(reason.to_string()))
                    .col_expr(orders::Column::UpdatedAt, Expr::value(at))
                    .exec(transaction)
                    .await?;
            }
        }
        Ok(())
    }
}
