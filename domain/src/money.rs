//! Exact money: integer minor units (cents), never a float.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::{InvalidField, Problem};

/// An amount of money in minor units of the shop's single currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(u64);

impl Money {
    pub const ZERO: Money = Money(0);
    /// What [`Money::parse_decimal`] accepts, as a regular expression: up
    /// to 14 whole digits (every order total fits) and at most two fraction
    /// digits.
    pub const DECIMAL_PATTERN: &str = r"^[0-9]{1,14}(\.[0-9]{1,2})?$";

    /// Parses an amount such as `"199.50"` exactly, naming `field` when it
    /// is not a decimal with at most two fraction digits.
    pub fn parse_decimal(field: &str, raw: &str) -> Result<Self, InvalidField> {
        decimal_minor_units(raw)
            .map(Money)
            .ok_or_else(|| malformed_decimal(field))
    }

    pub const fn from_minor_units(minor_units: u64) -> Self {
        Self(minor_units)
    }

    pub const fn minor_units(self) -> u64 {
        self.0
    }

    /// `None` on overflow, which bounded prices and quantities never reach.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_mul(self, factor: u32) -> Option<Money> {
        self.0.checked_mul(u64::from(factor)).map(Money)
    }
}

/// Renders as a decimal with two fraction digits: `199.50`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The minor units `raw` names: digits, then optionally a dot and one or
/// two digits; at most 14 whole digits, so the result fits a `u64`.
fn decimal_minor_units(raw: &str) -> Option<u64> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 14 || !digits_only(whole) {
        return None;
    }
    if fraction.len() > 2 || !digits_only(fraction) || (raw.contains('.') && fraction.is_empty()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let cents: u64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

fn malformed_decimal(field: &str) -> InvalidField {
    InvalidField::new(
        field,
        Problem::Malformed {
            what: "decimal amount with at most two fraction digits",
        },
    )
}

/// A product's unit price: strictly positive and at most
/// [`Price::MAX_MINOR_UNITS`], so that 50 lines of 1000 units each still fit
/// a `u64` total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(Money);

impl Price {
    pub const MAX_MINOR_UNITS: u64 = 100_000_000_000;
    /// What [`Price::parse_decimal`] accepts without leading zeros, as a
    /// regular expression: `0.01` to `1000000000.00` (which is
    /// [`Price::MAX_MINOR_UNITS`]), with at most two fraction digits.
    pub const DECIMAL_PATTERN: &str = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,8}(\.[0-9]{1,2})?|1000000000(\.00?)?)$";

    pub fn from_minor_units(minor_units: u64) -> Result<Self, InvalidField> {
        if minor_units == 0 || minor_units > Self::MAX_MINOR_UNITS {
            return Err(InvalidField::new(
                "price",
                Problem::OutOfRange {
                    min: 1,
                    max: Self::MAX_MINOR_UNITS,
                },
            ));
        }
        Ok(Self(Money(minor_units)))
    }

    /// Parses a decimal string with at most two fraction digits (`"199.5"`,
    /// `"199.50"`, `"199"`), exactly, without going through a float.
    pub fn parse_decimal(raw: &str) -> Result<Self, InvalidField> {
        let minor_units = decimal_minor_units(raw).ok_or_else(|| malformed_decimal("price"))?;
        Self::from_minor_units(minor_units)
    }

    pub const fn money(self) -> Money {
        self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_decimal_is_exact() {
        let cases = [
            ("199.50", 19_950),
            ("199.5", 19_950),
            ("199", 19_900),
            ("0.01", 1),
            ("0.10", 10),
        ];
        for (raw, minor) in cases {
            assert_eq!(
                Price::parse_decimal(raw).map(|p| p.money().minor_units()),
                Ok(minor),
                "case {raw}"
            );
        }
    }

    #[test]
    fn parse_decimal_refuses_malformed_and_out_of_range_amounts() {
        for raw in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "1e3",
            "abc",
            "1,00",
            " 1",
            "0",
            "0.00",
            "9999999999999",
        ] {
            let error = Price::parse_decimal(raw).unwrap_err();
            assert_eq!(error.field, "price", "case {raw:?}");
        }
    }

    #[test]
    fn an_amount_parses_exactly_up_to_any_order_total_and_names_its_field() {
        assert_eq!(Money::parse_decimal("amount", "199.5"), Ok(Money(19_950)));
        assert_eq!(Money::parse_decimal("amount", "0"), Ok(Money::ZERO));
        let largest = Money::parse_decimal("amount", "99999999999999.99").unwrap();
        assert_eq!(largest.minor_units(), 9_999_999_999_999_999);
        let pattern = regex::Regex::new(Money::DECIMAL_PATTERN).unwrap();
        for raw in ["", "1.", "1.234", "-1", "1e3", "999999999999999", " 1"] {
            assert_eq!(
                Money::parse_decimal("amount", raw).unwrap_err().field,
                "amount",
                "{raw:?}"
            );
            assert!(!pattern.is_match(raw), "the pattern refuses {raw:?} too");
        }
        assert!(pattern.is_match("99999999999999.99") && pattern.is_match("0.5"));
    }

    #[test]
    fn money_displays_two_fraction_digits() {
        assert_eq!(Money::from_minor_units(19_950).to_string(), "199.50");
        assert_eq!(Money::from_minor_units(7).to_string(), "0.07");
    }

    #[test]
    fn price_bounds_are_inclusive() {
        assert!(Price::from_minor_units(1).is_ok());
        assert!(Price::from_minor_units(Price::MAX_MINOR_UNITS).is_ok());
        assert!(Price::from_minor_units(Price::MAX_MINOR_UNITS + 1).is_err());
    }
}
