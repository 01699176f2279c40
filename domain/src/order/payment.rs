//! Payments: the provider's reference that settles an order, and why the
//! saga refuses an order before reserving anything.

use serde::{Deserialize, Serialize};

use crate::validation::{InvalidField, Problem};

/// A payment provider's reference for one payment (`pi_3Nx…`, `ch_…`):
/// 1 to 128 printable ASCII characters without spaces. Settling an order
/// again with the same reference changes nothing, so a provider that
/// retries its webhook settles the order once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentReference(String);

impl PaymentReference {
    pub const MAX_CHARS: usize = 128;
    /// What [`PaymentReference::parse`] accepts, as a regular expression.
    pub const PATTERN: &str = r"^[!-~]{1,128}$";

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let printable = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.len() > Self::MAX_CHARS {
            return Err(InvalidField::new(
                "reference",
                Problem::TooLong { max: Self::MAX_CHARS },
            ));
        }
        if !printable {
            return Err(InvalidField::new(
                "reference",
                Problem::InvalidCharacters {
                    allowed: "1 to 128 printable ASCII characters without spaces",
                },
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PaymentReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the saga refused an order as a whole, before reserving any line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum Refusal {
    /// The customer already had `limit` orders waiting for a decision or a
    /// payment (`MAX_UNSETTLED_ORDERS`).
    TooManyUnsettledOrders { limit: u32 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyUnsettledOrders { limit } => write!(
                f,
                "you have {limit} orders waiting for a decision or a payment, the most allowed: pay for one, or cancel a confirmed one, first"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_printable_ascii_without_spaces_and_agrees_with_its_pattern() {
        let pattern = regex::Regex::new(PaymentReference::PATTERN).unwrap();
        let longest = "r".repeat(128);
        for good in ["pi_3Nx", "a", longest.as_str(), "ch_1!~"] {
            assert!(PaymentReference::parse(good).is_ok(), "{good:?}");
            assert!(pattern.is_match(good), "{good:?}");
        }
        let too_long = "r".repeat(129);
        for bad in ["", "with space", "tab\t", "é", too_long.as_str()] {
            assert_eq!(PaymentReference::parse(bad).unwrap_err().field, "reference", "{bad:?}");
            assert!(!pattern.is_match(bad), "{bad:?}");
        }
    }
}
