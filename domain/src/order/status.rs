//! Where an order and its payment stand, as clients and views name them.

use serde::{Deserialize, Serialize};

/// An order's status. [`OrderStatus::as_str`] is the one spelling: the views
/// store it, the APIs answer with it, and [`str::parse`] reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrderStatus {
    /// Waiting for the saga to reserve stock.
    Pending,
    /// Every line reserved, priced and totalled.
    Confirmed,
    /// Some line could not be reserved; nothing is held.
    Rejected,
    /// Cancelled by its customer, or by the system when its payment window
    /// expired; the stock went back.
    Cancelled,
    /// Paid and fulfilled: the end of a sale. It can no longer be cancelled.
    Closed,
}

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentStatus {
    /// Not yet arranged: the order is pending.
    Pending,
    /// Arranged for the confirmed total.
    Arranged,
    /// Never taken: the order was rejected.
    Void,
    /// Paid: a payment provider's reference is recorded for the total.
    Settled,
    /// Never taken: the order was cancelled before it was paid.
    Cancelled,
    /// Given back: the order was cancelled after it was paid.
    Refunded,
}

/// A stored status this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}")]
pub struct UnknownStatus {
    pub what: &'static str,
    pub found: String,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Confirmed,
        Self::Rejected,
        Self::Cancelled,
        Self::Closed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Closed => "closed",
        }
    }
}

impl PaymentStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Arranged,
        Self::Void,
        Self::Settled,
        Self::Cancelled,
        Self::Refunded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Arranged => "arranged",
            Self::Void => "void",
            Self::Settled => "settled",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        named(Self::ALL, Self::as_str, "order status", text)
    }
}

impl std::str::FromStr for PaymentStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        named(Self::ALL, Self::as_str, "payment status", text)
    }
}

/// The one of `all` whose `name` is `text`.
fn named<T: Copy, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    what: &'static str,
    text: &str,
) -> Result<T, UnknownStatus> {
    all.into_iter()
        .find(|value| name(*value) == text)
        .ok_or_else(|| UnknownStatus {
            what,
            found: text.to_owned(),
        })
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_what_it_writes_and_agrees_with_serde() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_it() {
        let error = "shipped".parse::<OrderStatus>().unwrap_err();
        assert_eq!(error.to_string(), "unknown order status \"shipped\"");
        assert!("Pending".parse::<PaymentStatus>().is_err());
    }
}
