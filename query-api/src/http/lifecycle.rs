//! Where an order is in its lifecycle beyond its two statuses: its
//! payment's reference and times, when it was closed, until when it may be
//! paid, and why the saga refused it. Order summaries and details both show
//! these fields, each only where it applies.

use api_common::order_schema::{OrderStatus, PaymentStatus};
use api_common::problem::ProblemResponse;
use poem_openapi::{Enum, Object};
use views::tables::orders;

/// Why an order was refused as a whole.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub enum RefusalCode {
    /// The customer already had `limit` orders waiting for a decision or
    /// a payment.
    TooManyUnsettledOrders,
}

/// Why the order was refused before anything was reserved.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct Refusal {
    pub code: RefusalCode,
    /// With `tooManyUnsettledOrders`: the most unpaid orders allowed.
    #[oai(skip_serializing_if_is_none)]
    pub limit: Option<u32>,
    /// What the customer can do about it, in words.
    pub detail: String,
}

impl From<domain::order::Refusal> for Refusal {
    fn from(refusal: domain::order::Refusal) -> Self {
        let detail = refusal.to_string();
        match refusal {
            domain::order::Refusal::TooManyUnsettledOrders { limit } => Self {
                code: RefusalCode::TooManyUnsettledOrders,
                limit: Some(limit),
                detail,
            },
        }
    }
}

/// The lifecycle fields of an order, flattened into its summary and detail.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Once settled: the payment provider's reference.
    #[oai(skip_serializing_if_is_none)]
    pub payment_reference: Option<String>,
    /// Once settled.
    #[oai(skip_serializing_if_is_none)]
    pub settled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Once closed.
    #[oai(skip_serializing_if_is_none)]
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// While confirmed and unpaid: when the order is cancelled unless paid
    /// (absent for orders confirmed before payment windows were recorded).
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Once refused (status `rejected`, no `failures`).
    #[oai(skip_serializing_if_is_none)]
    pub refusal: Option<Refusal>,
}

impl Lifecycle {
    /// The row's lifecycle fields, given its statuses. A deadline shows
    /// only while it can still pass; a refusal the view stored in a form
    /// this build cannot read is a broken view, answered as an internal
    /// error rather than hidden.
    pub fn of(row: &orders::Model, status: OrderStatus, payment: PaymentStatus) -> Result<Self, ProblemResponse> {
        let waiting = status == OrderStatus::Confirmed && payment == PaymentStatus::Arranged;
        let refusal = match &row.refusal {
            None => None,
            Some(stored) => {
                let refusal: domain::order::Refusal = serde_json::from_str(stored).map_err(|error| {
                    ProblemResponse::internal(format!(
                        "order {} in the view: unreadable refusal: {error}",
                        row.order_id
                    ))
                })?;
                Some(refusal.into())
            }
        };
        Ok(Self {
            payment_reference: row.payment_reference.clone(),
            settled_at: row.settled_at,
            closed_at: row.closed_at,
            expires_at: row.expires_at.filter(|_| waiting),
            refusal,
        })
    }
}
