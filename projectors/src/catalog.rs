//! The catalog view: one row per product with its available stock, and its
//! name folded for search ([`domain::search::fold`], which the query API
//! applies to the search term).

use async_trait::async_trait;
use domain::product::ProductEvent;
use domain::search::fold;
use event_store::RecordedEvent;
use views::tables::products;

use crate::generations::Writer;
use crate::projection::{ApplyError, Key, Projection, Table, decode_all};
use crate::rows;

pub struct Catalog;

/// The product's row after `event`; `None` while the product has not been
/// created.
pub fn evolve(row: Option<products::Model>, event: &ProductEvent) -> Option<products::Model> {
    if let ProductEvent::Created {
        product_id,
        sku,
        name,
        price,
        available,
        at,
    } = event
    {
        return Some(products::Model {
            product_id: product_id.as_uuid(),
            sku: sku.to_string(),
            name: name.to_string(),
            name_folded: fold(name.as_str()),
            price_minor: price.money().minor_units() as i64,
            available: i64::from(available.get()),
            created_at: *at,
            updated_at: *at,
        });
    }
    let mut row = row?;
    row.updated_at = match event {
        ProductEvent::Created { .. } | ProductEvent::StockReservationRefused { .. } => return Some(row),
        ProductEvent::Renamed { name, at, .. } => {
            row.name = name.to_string();
            row.name_folded = fold(name.as_str());
            *at
        }
        ProductEvent::Repriced { price, at, .. } => {
            row.price_minor = price.money().minor_units() as i64;
            *at
        }
        ProductEvent::Restocked { available, at, .. }
        | ProductEvent::StockReserved { available, at, .. }
        | ProductEvent::StockReleased { available, at, .. } => {
            row.available = i64::from(available.get());
            *at
        }
    };
    Some(row)
}

/// The tables it owns.
const TABLES: &[Table] = &[Table {
    name: "products",
    key: &[Key::uuid("product_id")],
}];

#[async_trait]
impl Projection for Catalog {
    fn name(&self) -> &'static str {
        views::projections::CATALOG
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    async fn apply(&self, writer: &Writer<'_>, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let events = decode_all::<ProductEvent>(events)?;
        let ids = events.iter().map(|event| event.product_id().as_uuid());
        let mut products =
            rows::load::<products::Entity, _>(writer, products::Column::ProductId, ids, |row| row.product_id).await?;
        for event in &events {
            let id = event.product_id().as_uuid();
            if let Some(row) = evolve(products.remove(&id), event) {
                products.insert(id, row);
            }
        }
        rows::upsert::<products::Entity>(writer, products.into_values()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::ids::{OrderId, ProductId};
    use domain::money::Price;
    use domain::product::{ProductName, Sku};
    use domain::quantity::{Quantity, StockLevel};

    use super::*;

    fn created(sku: &Sku, at: domain::Timestamp) -> ProductEvent {
        ProductEvent::Created {
            product_id: ProductId::for_sku(sku),
            sku: sku.clone(),
            name: ProductName::parse("Lamp").unwrap(),
            price: Price::from_minor_units(1_250).unwrap(),
            available: StockLevel::parse_field("stock", 5).unwrap(),
            at,
        }
    }

    fn fold(events: &[ProductEvent]) -> Option<products::Model> {
        events.iter().fold(None, evolve)
    }

    #[test]
    fn stock_and_time_come_from_the_last_event() {
        let sku = Sku::parse("LAMP-1").unwrap();
        let (t0, t1) = (chrono::Utc::now(), chrono::Utc::now() + chrono::Duration::seconds(1));
        let reserved = ProductEvent::StockReserved {
            product_id: ProductId::for_sku(&sku),
            order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
            quantity: Quantity::parse_field("quantity", 2).unwrap(),
            unit_price: Price::from_minor_units(1_250).unwrap(),
            sku: sku.clone(),
            name: ProductName::parse("Lamp").unwrap(),
            available: StockLevel::parse_field("stock", 3).unwrap(),
            at: t1,
        };
        let row = fold(&[created(&sku, t0), reserved]).unwrap();
        assert_eq!((row.available, row.created_at, row.updated_at), (3, t0, t1));
        assert_eq!((row.sku.as_str(), row.price_minor), ("LAMP-1", 1_250));
    }

    #[test]
    fn a_refusal_changes_nothing() {
        let sku = Sku::parse("LAMP-1").unwrap();
        let now = chrono::Utc::now();
        let refused = ProductEvent::StockReservationRefused {
            product_id: ProductId::for_sku(&sku),
            order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
            requested: Quantity::parse_field("quantity", 9).unwrap(),
            available: StockLevel::parse_field("stock", 5).unwrap(),
            at: now + chrono::Duration::seconds(1),
        };
        assert_eq!(fold(&[created(&sku, now), refused]), fold(&[created(&sku, now)]));
    }

    #[test]
    fn the_search_key_follows_the_name() {
        let sku = Sku::parse("ECLAIR-1").unwrap();
        let now = chrono::Utc::now();
        assert_eq!(fold(&[created(&sku, now)]).unwrap().name_folded, "lamp");
        let renamed = ProductEvent::Renamed {
            product_id: ProductId::for_sku(&sku),
            name: ProductName::parse("ÉCLAIR Straße").unwrap(),
            at: now,
        };
        let row = fold(&[created(&sku, now), renamed]).unwrap();
        assert_eq!(
            (row.name.as_str(), row.name_folded.as_str()),
            ("ÉCLAIR Straße", "éclair strasse")
        );
    }

    #[test]
    fn changes_to_a_product_never_created_make_no_row() {
        let sku = Sku::parse("GHOST").unwrap();
        let renamed = ProductEvent::Renamed {
            product_id: ProductId::for_sku(&sku),
            name: ProductName::parse("Ghost").unwrap(),
            at: chrono::Utc::now(),
        };
        assert_eq!(fold(&[renamed]), None);
    }
}
