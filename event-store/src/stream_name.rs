use std::fmt;

use crate::StoreError;

/// A stream's name: 1 to 256 bytes of printable ASCII without spaces, not
/// starting with `$` (EventStoreDB's system streams). Streams are named
/// `category-id` so that readers can filter by category prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    pub const MAX_BYTES: usize = 256;

    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        let invalid = |reason| StoreError::InvalidStreamName {
            name: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > Self::MAX_BYTES {
            return Err(invalid("it is longer than 256 bytes"));
        }
        if name.starts_with('$') {
            return Err(invalid("names starting with '$' are reserved for system streams"));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("only printable ASCII without spaces is allowed"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_category_id_names() {
        assert_eq!(StreamName::new("order-42").unwrap().as_str(), "order-42");
        assert!(StreamName::new("a".repeat(256)).is_ok());
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        for bad in [
            String::new(),
            "a".repeat(257),
            "$all".to_owned(),
            "has space".to_owned(),
            "tab\there".to_owned(),
            "ünïcode".to_owned(),
        ] {
            assert!(
                matches!(StreamName::new(bad.clone()), Err(StoreError::InvalidStreamName { .. })),
                "case {bad:?}"
            );
        }
    }
}
