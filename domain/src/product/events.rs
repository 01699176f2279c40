use serde::{Deserialize, Serialize};

use super::{ProductName, Sku};
use crate::Timestamp;
use crate::event::DomainEvent;
use crate::ids::{OrderId, ProductId};
use crate::money::Price;
use crate::quantity::{Quantity, StockLevel};

/// What happened to a product. Every event carries the stock available after
/// it, so views never have to recompute it. Type names are stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProductEvent {
    #[serde(rename = "ProductCreated", rename_all = "camelCase")]
    Created {
        product_id: ProductId,
        sku: Sku,
        name: ProductName,
        price: Price,
        available: StockLevel,
        at: Timestamp,
    },
    #[serde(rename = "ProductRenamed", rename_all = "camelCase")]
    Renamed {
        product_id: ProductId,
        name: ProductName,
        at: Timestamp,
    },
    #[serde(rename = "ProductRepriced", rename_all = "camelCase")]
    Repriced {
        product_id: ProductId,
        price: Price,
        at: Timestamp,
    },
    #[serde(rename = "ProductRestocked", rename_all = "camelCase")]
    Restocked {
        product_id: ProductId,
        quantity: u32,
        available: StockLevel,
        at: Timestamp,
    },
    /// Stock held for an order, with the price and names as they were then:
    /// the order's price snapshot.
    #[serde(rename = "StockReserved", rename_all = "camelCase")]
    StockReserved {
        product_id: ProductId,
        order_id: OrderId,
        quantity: Quantity,
        unit_price: Price,
        sku: Sku,
        name: ProductName,
        available: StockLevel,
        at: Timestamp,
    },
    #[serde(rename = "StockReservationRefused", rename_all = "camelCase")]
    StockReservationRefused {
        product_id: ProductId,
        order_id: OrderId,
        requested: Quantity,
        available: StockLevel,
        at: Timestamp,
    },
    #[serde(rename = "StockReleased", rename_all = "camelCase")]
    StockReleased {
        product_id: ProductId,
        order_id: OrderId,
        quantity: Quantity,
        available: StockLevel,
        at: Timestamp,
    },
}

impl ProductEvent {
    pub fn product_id(&self) -> ProductId {
        match self {
            Self::Created { product_id, .. }
            | Self::Renamed { product_id, .. }
            | Self::Repriced { product_id, .. }
            | Self::Restocked { product_id, .. }
            | Self::StockReserved { product_id, .. }
            | Self::StockReservationRefused { product_id, .. }
            | Self::StockReleased { product_id, .. } => *product_id,
        }
    }
}

impl DomainEvent for ProductEvent {
    const CATEGORY: &'static str = "product";
    const EVENT_TYPES: &'static [&'static str] = &[
        "ProductCreated",
        "ProductRenamed",
        "ProductRepriced",
        "ProductRestocked",
        "StockReserved",
        "StockReservationRefused",
        "StockReleased",
    ];
}
