//! The order shapes both APIs answer with, so that a client generated from
//! either document reads an order's status and its rejection the same way.

use domain::order::{LineFailure, RejectionReason};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

/// Where an order stands: `pending` until the saga reserves its stock, then
/// `confirmed` or `rejected`; a confirmed order is `closed` once paid and
/// fulfilled, or `cancelled` (by its customer, or by the system when its
/// payment window expires).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "OrderStatus", rename_all = "camelCase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
    Closed,
}

/// Where an order's payment stands: `pending`, `arranged` once confirmed,
/// `settled` once paid, `void` when rejected, `cancelled` when the order was
/// cancelled unpaid, `refunded` when it was cancelled after it was paid.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "PaymentStatus", rename_all = "camelCase")]
pub enum PaymentStatus {
    Pending,
    Arranged,
    Void,
    Settled,
    Cancelled,
    Refunded,
}

impl From<domain::order::OrderStatus> for OrderStatus {
    fn from(status: domain::order::OrderStatus) -> Self {
        use domain::order::OrderStatus as S;
        match status {
            S::Pending => Self::Pending,
            S::Confirmed => Self::Confirmed,
            S::Rejected => Self::Rejected,
            S::Cancelled => Self::Cancelled,
            S::Closed => Self::Closed,
        }
    }
}

impl From<domain::order::PaymentStatus> for PaymentStatus {
    fn from(status: domain::order::PaymentStatus) -> Self {
        use domain::order::PaymentStatus as S;
        match status {
            S::Pending => Self::Pending,
            S::Arranged => Self::Arranged,
            S::Void => Self::Void,
            S::Settled => Self::Settled,
            S::Cancelled => Self::Cancelled,
            S::Refunded => Self::Refunded,
        }
    }
}

/// Why a product could not be reserved.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub enum FailureReason {
    ProductNotFound,
    InsufficientStock,
}

/// One product of a rejected order that could not be reserved.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct Failure {
    pub product_id: Uuid,
    pub reason: FailureReason,
    /// With `insufficientStock`: units asked for.
    #[oai(skip_serializing_if_is_none)]
    pub requested: Option<u32>,
    /// With `insufficientStock`: units there were.
    #[oai(skip_serializing_if_is_none)]
    pub available: Option<u32>,
}

impl From<&LineFailure> for Failure {
    fn from(failure: &LineFailure) -> Self {
        let (reason, requested, available) = match failure.reason {
            RejectionReason::ProductNotFound => (FailureReason::ProductNotFound, None, None),
            RejectionReason::InsufficientStock { requested, available } => (
                FailureReason::InsufficientStock,
                Some(requested.get()),
                Some(available.get()),
            ),
        };
        Self {
            product_id: failure.product_id.as_uuid(),
            reason,
            requested,
            available,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn the_api_spells_every_status_as_the_domain_does() {
        for status in domain::order::OrderStatus::ALL {
            assert_eq!(OrderStatus::from(status).to_json(), Some(status.as_str().into()));
        }
        for status in domain::order::PaymentStatus::ALL {
            assert_eq!(PaymentStatus::from(status).to_json(), Some(status.as_str().into()));
        }
    }
}
