//! Free-text values with bounds: names, addresses, reasons.

use serde::{Deserialize, Serialize};

use crate::validation::{InvalidField, Problem};

/// What [`bounded_text`] accepts, as a regular expression (JSON Schema
/// `pattern`, ECMA-262 and Rust `regex` alike): no control character, and at
/// least one character that is not whitespace (the text is trimmed before
/// its length is counted, so a blank one is empty).
pub const PRINTABLE_TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Trims `raw` and checks its length in characters and that it holds no
/// control characters. The building block of every bounded text newtype.
pub fn bounded_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, InvalidField> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length < min {
        return Err(InvalidField::new(field, Problem::TooShort { min }));
    }
    if length > max {
        return Err(InvalidField::new(field, Problem::TooLong { max }));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            Problem::InvalidCharacters {
                allowed: "printable characters",
            },
        ));
    }
    Ok(trimmed.to_owned())
}

/// Declares a newtype over a trimmed, length-bounded string.
macro_rules! bounded_text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;
            /// The characters accepted, before trimming: see [`crate::text::PRINTABLE_TEXT_PATTERN`].
            pub const PATTERN: &str = $crate::text::PRINTABLE_TEXT_PATTERN;

            /// Parses with the default field name.
            pub fn parse(raw: &str) -> Result<Self, InvalidField> {
                Self::parse_field($field, raw)
            }

            /// Parses, naming `field` in the error.
            pub fn parse_field(field: &str, raw: &str) -> Result<Self, InvalidField> {
                $crate::text::bounded_text(field, raw, $min, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidField;
            fn try_from(raw: &str) -> Result<Self, InvalidField> {
                Self::parse(raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use bounded_text_type;

bounded_text_type!(
    /// Why an order is cancelled, as the customer wrote it.
    Reason, "reason", 1, 500
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_trims_and_counts_characters_not_bytes() {
        assert_eq!(bounded_text("f", "  héllo ", 5, 5), Ok("héllo".to_owned()));
    }

    #[test]
    fn bounded_text_names_the_field_and_the_bound() {
        assert_eq!(
            bounded_text("name", "   ", 1, 5),
            Err(InvalidField::new("name", Problem::TooShort { min: 1 }))
        );
        assert_eq!(
            bounded_text("name", "abcdef", 1, 5),
            Err(InvalidField::new("name", Problem::TooLong { max: 5 }))
        );
    }

    #[test]
    fn bounded_text_refuses_control_characters() {
        let error = bounded_text("name", "a\u{0}b", 1, 5).unwrap_err();
        assert_eq!(error.field, "name");
        assert!(matches!(error.problem, Problem::InvalidCharacters { .. }));
    }
}
