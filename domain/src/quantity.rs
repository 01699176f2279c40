//! Counted amounts of stock.

use serde::{Deserialize, Serialize};

use crate::validation::{InvalidField, Problem};

/// Units of one product on one order line: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 1000;

    pub fn parse_field(field: &str, raw: i64) -> Result<Self, InvalidField> {
        if raw < i64::from(Self::MIN) || raw > i64::from(Self::MAX) {
            return Err(InvalidField::new(
                field,
                Problem::OutOfRange {
                    min: u64::from(Self::MIN),
                    max: u64::from(Self::MAX),
                },
            ));
        }
        Ok(Self(raw as u32))
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

/// Units of stock added or held at once: 0 to [`StockLevel::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StockLevel(u32);

impl StockLevel {
    pub const MAX: u32 = 1_000_000_000;

    pub fn parse_field(field: &str, raw: i64) -> Result<Self, InvalidField> {
        if raw < 0 || raw > i64::from(Self::MAX) {
            return Err(InvalidField::new(
                field,
                Problem::OutOfRange {
                    min: 0,
                    max: u64::from(Self::MAX),
                },
            ));
        }
        Ok(Self(raw as u32))
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// `None` when the sum passes [`StockLevel::MAX`].
    pub fn checked_add(self, units: u32) -> Option<StockLevel> {
        self.0
            .checked_add(units)
            .filter(|sum| *sum <= Self::MAX)
            .map(StockLevel)
    }

    /// `None` when fewer than `units` are there: stock never goes negative.
    pub fn checked_sub(self, units: u32) -> Option<StockLevel> {
        self.0.checked_sub(units).map(StockLevel)
    }
}

/// Units added to a product's stock at once: 1 to [`StockLevel::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RestockQuantity(u32);

impl RestockQuantity {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = StockLevel::MAX;

    pub fn parse_field(field: &str, raw: i64) -> Result<Self, InvalidField> {
        if raw < i64::from(Self::MIN) || raw > i64::from(Self::MAX) {
            return Err(InvalidField::new(
                field,
                Problem::OutOfRange {
                    min: 1,
                    max: u64::from(StockLevel::MAX),
                },
            ));
        }
        Ok(Self(raw as u32))
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_accepts_one_to_a_thousand() {
        for (raw, ok) in [(0, false), (1, true), (1000, true), (1001, false), (-5, false)] {
            assert_eq!(Quantity::parse_field("quantity", raw).is_ok(), ok, "case {raw}");
        }
    }

    #[test]
    fn restock_accepts_one_to_the_maximum_stock() {
        let max = i64::from(StockLevel::MAX);
        for (raw, ok) in [(0, false), (1, true), (max, true), (max + 1, false), (-1, false)] {
            assert_eq!(RestockQuantity::parse_field("quantity", raw).is_ok(), ok, "case {raw}");
        }
    }

    #[test]
    fn stock_never_goes_below_zero_nor_above_the_maximum() {
        let stock = StockLevel::parse_field("stock", 5).unwrap();
        assert_eq!(stock.checked_sub(6), None);
        assert_eq!(stock.checked_sub(5).map(StockLevel::get), Some(0));
        assert_eq!(stock.checked_add(StockLevel::MAX), None);
        assert!(StockLevel::parse_field("stock", -1).is_err());
    }
}
