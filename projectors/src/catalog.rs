//! The catalog view: one row per product with its available stock.

use async_trait::async_trait;
use domain::product::ProductEvent;
use event_store::RecordedEvent;
use migrations::views::products;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::projection::{ApplyError, Projection, decode};

pub struct Catalog;

#[async_trait]
impl Projection for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["products"]
    }

    async fn apply(&self, transaction: &DatabaseTransaction, event: &RecordedEvent) -> Result<(), ApplyError> {
        let Some(event) = decode::<ProductEvent>(event)? else {
            return Ok(());
        };
        let product_id = event.product_id().as_uuid();
        let (column, value, at) = match event {
            ProductEvent::Created {
                sku,
                name,
                price,
                available,
                at,
                ..
            } => {
                let row = products::ActiveModel {
                    product_id: Set(product_id),
                    sku: Set(sku.to_string()),
                    name: Set(name.to_string()),
                    price_minor: Set(price.money().minor_units() as i64),
                    available: Set(i64::from(available.get())),
                    created_at: Set(at),
                    updated_at: Set(at),
                };
                products::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(products::Column::ProductId)
                            .update_columns([
                                products::Column::Sku,
                                products::Column::Name,
                                products::Column::PriceMinor,
                                products::Column::Available,
                                products::Column::UpdatedAt,
                            ])
                            .to_owned(),
                    )
                    .exec_without_returning(transaction)
                    .await?;
                return Ok(());
            }
            ProductEvent::Renamed { name, at, .. } => (products::Column::Name, Expr::value(name.to_string()), at),
            ProductEvent::Repriced { price, at, .. } => (
                products::Column::PriceMinor,
                Expr::value(price.money().minor_units() as i64),
                at,
            ),
            ProductEvent::Restocked { available, at, .. }
            | ProductEvent::StockReserved { available, at, .. }
            | ProductEvent::StockReleased { available, at, .. } => {
                (products::Column::Available, Expr::value(i64::from(available.get())), at)
            }
            ProductEvent::StockReservationRefused { .. } => return Ok(()),
        };
        products::Entity::update_many()
            .col_expr(column, value)
            .col_expr(products::Column::UpdatedAt, Expr::value(at))
            .filter(products::Column::ProductId.eq(product_id))
            .exec(transaction)
            .await?;
        Ok(())
    }
}
