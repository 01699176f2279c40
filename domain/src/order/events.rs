use serde::{Deserialize, Serialize};

use super::{Customer, OrderLines, ShippingAddress};
use crate::Timestamp;
use crate::event::DomainEvent;
use crate::ids::{OrderId, ProductId, UserId};
use crate::money::{Money, Price};
use crate::product::{ProductName, Sku};
use crate::quantity::{Quantity, StockLevel};
use crate::text::Reason;

/// A line as it was reserved: the price and names at reservation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub product_id: ProductId,
    pub sku: Sku,
    pub name: ProductName,
    pub quantity: Quantity,
    pub unit_price: Price,
}

/// A confirmed line with its total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricedLine {
    pub product_id: ProductId,
    pub sku: Sku,
    pub name: ProductName,
    pub quantity: Quantity,
    pub unit_price: Price,
    pub line_total: Money,
}

/// Why one product of an order could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum RejectionReason {
    ProductNotFound,
    #[serde(rename_all = "camelCase")]
    InsufficientStock {
        requested: Quantity,
        available: StockLevel,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineFailure {
    pub product_id: ProductId,
    pub reason: RejectionReason,
}

/// What happened to an order. Type names are stable: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    #[serde(rename = "OrderPlaced", rename_all = "camelCase")]
    Placed {
        order_id: OrderId,
        customer_id: UserId,
        lines: OrderLines,
        customer: Customer,
        shipping: ShippingAddress,
        at: Timestamp,
    },
    /// Stock is held for every line; payment is arranged for `total`.
    #[serde(rename = "OrderConfirmed", rename_all = "camelCase")]
    Confirmed {
        order_id: OrderId,
        customer_id: UserId,
        lines: Vec<PricedLine>,
        total: Money,
        at: Timestamp,
    },
    #[serde(rename = "OrderRejected", rename_all = "camelCase")]
    Rejected {
        order_id: OrderId,
        customer_id: UserId,
        failures: Vec<LineFailure>,
        at: Timestamp,
    },
    /// The stock of `lines` goes back and the payment is refunded.
    #[serde(rename = "OrderCancelled", rename_all = "camelCase")]
    Cancelled {
        order_id: OrderId,
        customer_id: UserId,
        lines: OrderLines,
        reason: Reason,
        at: Timestamp,
    },
}

impl OrderEvent {
    pub fn order_id(&self) -> OrderId {
        match self {
            Self::Placed { order_id, .. }
            | Self::Confirmed { order_id, .. }
            | Self::Rejected { order_id, .. }
            | Self::Cancelled { order_id, .. } => *order_id,
        }
    }
}

impl DomainEvent for OrderEvent {
    const CATEGORY: &'static str = "order";
    const EVENT_TYPES: &'static [&'static str] = &["OrderPlaced", "OrderConfirmed", "OrderRejected", "OrderCancelled"];
}
