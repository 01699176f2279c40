//! Free-text values with bounds: names, addresses, reasons.

use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::validation::{InvalidField, Problem};

/// The characters no bounded text may hold, as the inside of a regular
/// expression's character class: the controls (Unicode general category
/// Cc) and the format characters (Cf) of the Basic Multilingual Plane, as
/// Unicode 18 lists them — soft hyphen, Arabic and Syriac marks, the
/// zero-width space, joiners and marks (U+200B..U+200F), the bidirectional
/// embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069), the
/// invisible operators (U+2060..U+2064), U+FEFF and the interlinear
/// annotation marks. Written as `\uXXXX` escapes, which ECMA-262, Python
/// (Schemathesis) and Rust `regex` read alike. The Cf characters above the
/// BMP (U+110BD, U+110CD, U+13430..U+1343F, U+1BCA0..U+1BCA3,
/// U+1D173..U+1D17A, U+E0001, U+E0020..U+E007F) cannot be written in a class
/// that ECMA-262 without its `u` flag reads as UTF-16 code units: the schema
/// lets them through and [`bounded_text`] refuses them, the same 400.
macro_rules! refused_class {
    () => {
        r"\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    };
}

pub(crate) use refused_class;

/// What [`bounded_text`] accepts, as a regular expression (JSON Schema
/// `pattern`, ECMA-262 and Rust `regex` alike): no control character, no
/// format character of the BMP, and at least one character that is not
/// whitespace (the text is trimmed before its length is counted, so a blank
/// one is empty). Negated classes only: generators draw from it quickly.
pub const PRINTABLE_TEXT_PATTERN: &str = concat!(
    "^[^",
    refused_class!(),
    r"]*[^\s",
    refused_class!(),
    "][^",
    refused_class!(),
    "]*$"
);

/// What [`bounded_text`] says of a text holding a refused character.
pub const PRINTABLE: Problem = Problem::InvalidCharacters {
    allowed: "printable characters: no control characters, no invisible format characters (bidirectional controls, zero-width characters, soft hyphens)",
};

/// Whether `c` may not appear in a bounded text: a control character (Cc)
/// or a format character (Cf). Format characters are invisible: bidi
/// overrides reorder what a name displays ("Trojan Source"), zero-width ones
/// make two names that look alike differ. Refusing Cf also refuses the
/// zero-width joiners some scripts and emoji sequences use: names here are
/// plain text, and one rule for every script is easier to trust.
pub fn is_refused(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// Trims `raw` and checks its length in characters and that it holds no
/// control or format characters ([`is_refused`]). The building block of every bounded text newtype.
pub fn bounded_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, InvalidField> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length < min {
        return Err(InvalidField::new(field, Problem::TooShort { min }));
    }
    if length > max {
        return Err(InvalidField::new(field, Problem::TooLong { max }));
    }
    if trimmed.chars().any(is_refused) {
        return Err(InvalidField::new(field, PRINTABLE));
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
        assert_eq!(error, InvalidField::new("name", PRINTABLE));
    }

    #[test]
    fn bounded_text_refuses_format_characters() {
        let format = [
            '\u{202E}',
            '\u{200B}',
            '\u{200D}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{E0001}',
        ];
        for c in format {
            let error = bounded_text("name", &format!("a{c}b"), 1, 5).unwrap_err();
            assert_eq!(error, InvalidField::new("name", PRINTABLE), "U+{:04X}", u32::from(c));
        }
        assert_eq!(
            bounded_text("name", "Éclair ß 東京", 1, 20),
            Ok("Éclair ß 東京".to_owned())
        );
    }

    /// The published pattern refuses exactly the characters [`is_refused`]
    /// refuses, on every character of the BMP.
    #[test]
    fn the_pattern_refuses_what_bounded_text_refuses_in_the_bmp() {
        let pattern = regex::Regex::new(PRINTABLE_TEXT_PATTERN).unwrap();
        for c in '\0'..='\u{FFFF}' {
            assert_eq!(
                pattern.is_match(&format!("a{c}")),
                !is_refused(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    /// Above the BMP, the refused characters are the ones the pattern's
    /// documentation lists as left to [`bounded_text`]: if a Unicode update
    /// adds one, this fails and the list is brought up to date.
    #[test]
    fn above_the_bmp_only_the_documented_format_characters_are_refused() {
        let documented = [
            0x110BD..=0x110BD,
            0x110CD..=0x110CD,
            0x13430..=0x1343F,
            0x1BCA0..=0x1BCA3,
            0x1D173..=0x1D17A,
            0xE0001..=0xE0001,
            0xE0020..=0xE007F,
        ];
        let refused: Vec<u32> = ('\u{10000}'..=char::MAX)
            .filter(|c| is_refused(*c))
            .map(u32::from)
            .collect();
        let listed: Vec<u32> = documented.into_iter().flatten().collect();
        assert_eq!(refused, listed);
    }
}
