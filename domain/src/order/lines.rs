use serde::{Deserialize, Serialize};

use crate::ids::ProductId;
use crate::quantity::Quantity;
use crate::validation::{InvalidField, Problem};

/// One product and how many units of it an order asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// The lines of an order: 1 to 50 requested lines, each of 1 to 1000 units,
/// with lines for the same product merged (the merged line is bounded too).
/// Merged lines keep the order in which their product first appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    pub const MIN_LINES: usize = 1;
    pub const MAX_LINES: usize = 50;

    /// Parses `(product, quantity)` pairs as they were requested; errors name
    /// the offending `items[i]` field.
    pub fn parse(requested: &[(ProductId, i64)]) -> Result<Self, InvalidField> {
        if !(Self::MIN_LINES..=Self::MAX_LINES).contains(&requested.len()) {
            return Err(InvalidField::new(
                "items",
                Problem::WrongCount {
                    min: Self::MIN_LINES,
                    max: Self::MAX_LINES,
                },
            ));
        }
        let mut merged: Vec<(OrderLine, usize)> = Vec::with_capacity(requested.len());
        for (index, (product_id, quantity)) in requested.iter().enumerate() {
            let field = format!("items[{index}].quantity");
            let quantity = Quantity::parse_field(&field, *quantity)?;
            match merged.iter_mut().find(|(line, _)| line.product_id == *product_id) {
                Some((line, first_index)) => {
                    let sum = i64::from(line.quantity.get()) + i64::from(quantity.get());
                    line.quantity = Quantity::parse_field(&format!("items[{first_index}].quantity"), sum)
                        .map_err(|error| InvalidField::new(error.field, merged_out_of_range()))?;
                }
                None => merged.push((
                    OrderLine {
                        product_id: *product_id,
                        quantity,
                    },
                    index,
                )),
            }
        }
        Ok(Self(merged.into_iter().map(|(line, _)| line).collect()))
    }

    pub fn as_slice(&self) -> &[OrderLine] {
        &self.0
    }
}

fn merged_out_of_range() -> Problem {
    Problem::MergedOutOfRange {
        min: u64::from(Quantity::MIN),
        max: u64::from(Quantity::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(n: u128) -> ProductId {
        ProductId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn merges_lines_of_the_same_product_in_first_seen_order() {
        let lines = OrderLines::parse(&[(product(1), 2), (product(2), 1), (product(1), 3)]).unwrap();
        let summary: Vec<_> = lines
            .as_slice()
            .iter()
            .map(|line| (line.product_id, line.quantity.get()))
            .collect();
        assert_eq!(summary, vec![(product(1), 5), (product(2), 1)]);
    }

    #[test]
    fn refuses_no_lines_and_more_than_fifty() {
        assert_eq!(OrderLines::parse(&[]).unwrap_err().field, "items");
        let many: Vec<_> = (0..51).map(|n| (product(n), 1)).collect();
        assert_eq!(
            OrderLines::parse(&many).unwrap_err().problem,
            Problem::WrongCount { min: 1, max: 50 }
        );
        assert!(OrderLines::parse(&many[..50]).is_ok());
    }

    #[test]
    fn names_the_line_with_a_bad_quantity() {
        for bad in [0, -1, 1001] {
            let error = OrderLines::parse(&[(product(1), 1), (product(2), bad)]).unwrap_err();
            assert_eq!(error.field, "items[1].quantity", "case {bad}");
        }
    }

    #[test]
    fn refuses_a_merged_line_over_the_bound() {
        let error = OrderLines::parse(&[(product(1), 600), (product(2), 1), (product(1), 401)]).unwrap_err();
        assert_eq!(error.field, "items[0].quantity");
        assert!(error.problem.is_cross_field(), "{:?}", error.problem);
        assert!(OrderLines::parse(&[(product(1), 600), (product(1), 400)]).is_ok());
    }
}
