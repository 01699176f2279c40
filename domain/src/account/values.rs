use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::bounded_text_type;
use crate::validation::{InvalidField, Problem};

/// 3 to 32 characters of `a-z 0-9 . _ -`, compared case-insensitively: the
/// canonical form is lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 32;
    /// The characters accepted, in either case.
    pub const PATTERN: &str = r"^[A-Za-z0-9._-]*$";

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "username";
        let length = raw.chars().count();
        if length < Self::MIN_CHARS {
            return Err(InvalidField::new(field, Problem::TooShort { min: Self::MIN_CHARS }));
        }
        if length > Self::MAX_CHARS {
            return Err(InvalidField::new(field, Problem::TooLong { max: Self::MAX_CHARS }));
        }
        let canonical = raw.to_ascii_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if !canonical.chars().all(allowed) {
            return Err(InvalidField::new(
                field,
                Problem::InvalidCharacters {
                    allowed: "letters a-z, digits, '.', '_' and '-'",
                },
            ));
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

bounded_text_type!(
    /// The name shown for a user: 1 to 64 characters after trimming.
    DisplayName, "displayName", 1, 64
);

/// A plain password on its way to the hasher: 8 to 128 characters. It is
/// never stored, serialized or printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let length = raw.chars().count();
        if length < Self::MIN_CHARS {
            return Err(InvalidField::new(
                "password",
                Problem::TooShort { min: Self::MIN_CHARS },
            ));
        }
        if length > Self::MAX_CHARS {
            return Err(InvalidField::new("password", Problem::TooLong { max: Self::MAX_CHARS }));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A PHC-format password hash (argon2id). It lives only in account events,
/// which only the command side reads.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Customer,
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_is_canonically_lowercase() {
        assert_eq!(Username::parse("Alice.B_c-9").unwrap().as_str(), "alice.b_c-9");
    }

    #[test]
    fn username_bounds_and_alphabet() {
        let cases = [
            ("ab", Some(Problem::TooShort { min: 3 })),
            ("abc", None),
            (&"a".repeat(32), None),
            (&"a".repeat(33), Some(Problem::TooLong { max: 32 })),
            (
                "al ice",
                Some(Problem::InvalidCharacters {
                    allowed: "letters a-z, digits, '.', '_' and '-'",
                }),
            ),
            (
                "álice",
                Some(Problem::InvalidCharacters {
                    allowed: "letters a-z, digits, '.', '_' and '-'",
                }),
            ),
        ];
        for (raw, expected) in cases {
            let problem = Username::parse(raw).err().map(|e| e.problem);
            assert_eq!(problem, expected, "case {raw:?}");
        }
    }

    #[test]
    fn password_bounds_count_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(129)).unwrap_err(),
            InvalidField::new("password", Problem::TooLong { max: 128 })
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let password = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::from_phc("$argon2id$v=19$secret".to_owned());
        assert!(!format!("{hash:?}").contains("secret"));
    }

    #[test]
    fn display_name_refuses_format_characters() {
        for bad in ["Ali\u{202E}ce", "Ali\u{200B}ce", "\u{FEFF}Alice", "Alice\u{E0001}"] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(InvalidField::new("displayName", crate::text::PRINTABLE)),
                "{bad:?}"
            );
        }
        assert_eq!(DisplayName::parse("Zoë").unwrap().as_str(), "Zoë");
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Alice  ").unwrap().as_str(), "Alice");
        assert_eq!(DisplayName::parse(" ").unwrap_err().field, "displayName");
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
    }
}
