use crate::Position;

/// What a writer expects of a stream before its append. Revisions count a
/// stream's events from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist: how a unique name is claimed.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have this revision: the revision the
    /// writer loaded its aggregate at.
    Exact(u64),
}

impl ExpectedRevision {
    /// The expectation for appending after having read `current`, the last
    /// revision (`None` for an empty stream).
    pub fn after(current: Option<u64>) -> Self {
        current.map_or(Self::NoStream, Self::Exact)
    }

    /// Whether a stream whose last revision is `actual` meets this
    /// expectation.
    pub fn is_met_by(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::StreamExists => actual.is_some(),
            Self::Exact(revision) => actual == Some(revision),
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The revision of the last event appended: the next expected revision.
    pub revision: u64,
    /// The global position of the last event appended.
    pub position: Position,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_matrix() {
        use ExpectedRevision::*;
        let cases = [
            (Any, None, true),
            (Any, Some(3), true),
            (NoStream, None, true),
            (NoStream, Some(0), false),
            (StreamExists, None, false),
            (StreamExists, Some(0), true),
            (Exact(0), None, false),
            (Exact(0), Some(0), true),
            (Exact(1), Some(0), false),
        ];
        for (expected, actual, met) in cases {
            assert_eq!(expected.is_met_by(actual), met, "case {expected:?} vs {actual:?}");
        }
    }

    #[test]
    fn after_reading_expects_what_was_read() {
        assert_eq!(ExpectedRevision::after(None), ExpectedRevision::NoStream);
        assert_eq!(ExpectedRevision::after(Some(4)), ExpectedRevision::Exact(4));
    }
}
