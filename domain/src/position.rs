use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in the global log. It only grows in commit order, so it is the
/// consistency token clients see and the checkpoint readers keep.
///
/// EventStoreDB names a place by a commit and a prepare position (events of
/// one append share the commit position); the embedded store uses the same
/// number for both. Positions order by commit, then prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Position {
    pub commit: u64,
    pub prepare: u64,
}

impl Position {
    pub const fn new(commit: u64, prepare: u64) -> Self {
        Self { commit, prepare }
    }

    /// The embedded store's positions: one number for both parts.
    pub const fn at(offset: u64) -> Self {
        Self {
            commit: offset,
            prepare: offset,
        }
    }
}

/// `commit` alone when both parts are equal, otherwise `commit/prepare`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == self.prepare {
            write!(f, "{}", self.commit)
        } else {
            write!(f, "{}/{}", self.commit, self.prepare)
        }
    }
}

impl std::str::FromStr for Position {
    type Err = std::num::ParseIntError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.split_once('/') {
            Some((commit, prepare)) => Ok(Self::new(commit.parse()?, prepare.parse()?)),
            None => raw.parse().map(Self::at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for position in [Position::at(0), Position::at(42), Position::new(10, 7)] {
            assert_eq!(position.to_string().parse::<Position>(), Ok(position));
        }
        assert_eq!(Position::new(10, 7).to_string(), "10/7");
        assert!("x".parse::<Position>().is_err());
        assert!("1/".parse::<Position>().is_err());
    }

    #[test]
    fn orders_by_commit_then_prepare() {
        assert!(Position::new(1, 9) < Position::new(2, 0));
        assert!(Position::new(2, 1) < Position::new(2, 3));
    }
}
