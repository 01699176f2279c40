use serde::{Deserialize, Serialize};

use super::{Customer, OrderLines, PaymentReference, Refusal, ShippingAddress};
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
    /// Stock is held for every line; payment is arranged for `total`, due
    /// by `payment_due` (absent from orders confirmed before payment
    /// windows existed: their window counts from `at`).
    #[serde(rename = "OrderConfirmed", rename_all = "camelCase")]
    Confirmed {
        order_id: OrderId,
        customer_id: UserId,
        lines: Vec<PricedLine>,
        total: Money,
        at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payment_due: Option<Timestamp>,
    },
    #[serde(rename = "OrderRejected", rename_all = "camelCase")]
    Rejected {
        order_id: OrderId,
        customer_id: UserId,
        failures: Vec<LineFailure>,
        at: Timestamp,
    },
    /// The saga refused the order as a whole; nothing was reserved.
    #[serde(rename = "OrderRefused", rename_all = "camelCase")]
    Refused {
        order_id: OrderId,
        customer_id: UserId,
        refusal: Refusal,
        at: Timestamp,
    },
    /// The stock of `lines` goes back. A settled order's payment is given
    /// back by the [`OrderEvent::PaymentRefunded`] appended with it.
    #[serde(rename = "OrderCancelled", rename_all = "camelCase")]
    Cancelled {
        order_id: OrderId,
        customer_id: UserId,
        lines: OrderLines,
        reason: Reason,
        at: Timestamp,
    },
    /// A payment provider took `amount`, the order's total.
    #[serde(rename = "PaymentSettled", rename_all = "camelCase")]
    PaymentSettled {
        order_id: OrderId,
        customer_id: UserId,
        reference: PaymentReference,
        amount: Money,
        at: Timestamp,
    },
    /// The settled payment `reference` is to be given back: what a payment
    /// integration acts on.
    #[serde(rename = "PaymentRefunded", rename_all = "camelCase")]
    PaymentRefunded {
        order_id: OrderId,
        customer_id: UserId,
        reference: PaymentReference,
        amount: Money,
        at: Timestamp,
    },
    /// Paid and fulfilled; the order holds its stock for good.
    #[serde(rename = "OrderClosed", rename_all = "camelCase")]
    Closed {
        order_id: OrderId,
        customer_id: UserId,
        at: Timestamp,
    },
}

impl OrderEvent {
    /// The type names of the events [`OrderEvent::is_decision`] holds true
    /// for, so that a reader can pick decisions out of the log by type
    /// before it decodes anything.
    pub const DECISION_TYPES: &'static [&'static str] = &["OrderConfirmed", "OrderRejected", "OrderRefused"];

    /// Whether this is the saga's decision on a placed order (confirmed,
    /// rejected or refused): what a request placing it waits for.
    pub fn is_decision(&self) -> bool {
        matches!(
            self,
            Self::Confirmed { .. } | Self::Rejected { .. } | Self::Refused { .. }
        )
    }

    pub fn order_id(&self) -> OrderId {
        match self {
            Self::Placed { order_id, .. }
            | Self::Confirmed { order_id, .. }
            | Self::Rejected { order_id, .. }
            | Self::Refused { order_id, .. }
            | Self::Cancelled { order_id, .. }
            | Self::PaymentSettled { order_id, .. }
            | Self::PaymentRefunded { order_id, .. }
            | Self::Closed { order_id, .. } => *order_id,
        }
    }
}

impl DomainEvent for OrderEvent {
    const CATEGORY: &'static str = "order";
    const EVENT_TYPES: &'static [&'static str] = &[
        "OrderPlaced",
        "OrderConfirmed",
        "OrderRejected",
        "OrderRefused",
        "OrderCancelled",
        "PaymentSettled",
        "PaymentRefunded",
        "OrderClosed",
    ];
}
