use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::bounded_text_type;
use crate::validation::{InvalidField, Problem};

/// A stock-keeping unit: 1 to 64 characters of `A-Z 0-9 . _ -`, compared
/// case-insensitively: the canonical form is uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    pub const MIN_CHARS: usize = 1;
    pub const MAX_CHARS: usize = 64;
    /// The characters accepted, in either case.
    pub const PATTERN: &str = r"^[A-Za-z0-9._-]*$";

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(InvalidField::new("sku", Problem::TooShort { min: Self::MIN_CHARS }));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(InvalidField::new("sku", Problem::TooLong { max: Self::MAX_CHARS }));
        }
        let canonical = raw.to_ascii_uppercase();
        let allowed = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if !canonical.chars().all(allowed) {
            return Err(InvalidField::new(
                "sku",
                Problem::InvalidCharacters {
                    allowed: "letters A-Z, digits, '.', '_' and '-'",
                },
            ));
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

bounded_text_type!(
    /// A product's name: 1 to 200 characters after trimming.
    ProductName, "name", 1, 200
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_name_refuses_format_characters() {
        for bad in ["Mug\u{202E}gnp.exe", "M\u{200B}ug", "Mu\u{AD}g"] {
            assert_eq!(
                ProductName::parse(bad),
                Err(InvalidField::new("name", crate::text::PRINTABLE)),
                "{bad:?}"
            );
        }
        assert_eq!(ProductName::parse("Éclair").unwrap().as_str(), "Éclair");
    }

    #[test]
    fn sku_is_canonically_uppercase_and_bounded() {
        assert_eq!(Sku::parse("ab-1.x_2").unwrap().as_str(), "AB-1.X_2");
        assert_eq!(Sku::parse("").unwrap_err().problem, Problem::TooShort { min: 1 });
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
        assert_eq!(
            Sku::parse(&"A".repeat(65)).unwrap_err().problem,
            Problem::TooLong { max: 64 }
        );
        assert!(matches!(
            Sku::parse("AB 1").unwrap_err().problem,
            Problem::InvalidCharacters { .. }
        ));
    }
}
