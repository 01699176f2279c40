//! The error every value parser returns: which field, and what is wrong with it.

use std::fmt;

/// What is wrong with an input value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("may only contain {allowed}")]
    InvalidCharacters { allowed: &'static str },
    #[error("must be between {min} and {max}")]
    OutOfRange { min: u64, max: u64 },
    #[error("must have between {min} and {max} entries")]
    WrongCount { min: usize, max: usize },
    #[error("is not a valid {what}")]
    Malformed { what: &'static str },
    /// The lines of one product, merged, are out of bounds: a rule across
    /// fields, which no schema states (see [`Problem::is_cross_field`]).
    #[error("with the other lines of its product must be between {min} and {max}")]
    MergedOutOfRange { min: u64, max: u64 },
}

impl Problem {
    /// Whether this breaks a rule across fields, which a schema cannot say:
    /// such a request matches its schema, so HTTP answers 422, not 400.
    pub fn is_cross_field(&self) -> bool {
        matches!(self, Self::MergedOutOfRange { .. })
    }
}

/// A field that failed to parse. `field` is a JSON-style path such as
/// `items[2].quantity`, so the HTTP layer can name it in a problem body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidField {
    pub field: String,
    pub problem: Problem,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }

    /// Nests this error under a parent path: `quantity` inside `items[2]`
    /// becomes `items[2].quantity`.
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            problem: self.problem,
        }
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}
