//! Blue/green generations of a projection: its live tables, which readers
//! see, a next generation a rebuild writes beside them, and the previous
//! generation a promotion keeps for rollback.
//!
//! A generation is a copy of the projection's tables under a suffix
//! (`products__next`), with its own checkpoint and parked events under the
//! same suffix (`catalog__next`), so a rebuild runs exactly as a projector
//! does — short transactions that each move its checkpoint — and resumes
//! where it stopped. Promotion and rollback rename tables, checkpoints and
//! parked events in one transaction ([`swap`]): readers switch from one
//! statement to the next, never seeing an empty or half-built table.
//!
//! - [`tables`]: creating, dropping and renaming a generation's tables;
//! - [`record`]: what is known of each generation (`projection_generations`);
//! - [`rebuild`]: building the next generation and catching it up;
//! - [`verify`]: comparing two generations at one log position;
//! - [`swap`]: promotion, rollback, dropping a generation;
//! - [`pace`]: how much of the machine a rebuild may take;
//! - [`metrics`]: the last verifications as metrics.

pub mod metrics;
pub mod pace;
pub mod rebuild;
pub mod record;
pub mod swap;
pub mod tables;
pub mod verify;

use sea_orm::DatabaseTransaction;
use serde::Serialize;

use crate::runner::ProjectorError;

/// Which generation of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// What readers see: the tables under their own names.
    Live,
    /// What a rebuild writes, until it is promoted.
    Next,
    /// What the last promotion replaced, until it is dropped.
    Previous,
    /// The live generation's name for the moment of a rollback, inside the
    /// transaction that swaps it with the previous one.
    #[serde(skip)]
    Swapping,
}

impl Slot {
    pub const ALL: [Self; 3] = [Self::Live, Self::Next, Self::Previous];

    /// What the generation adds to the names of its tables, indexes,
    /// checkpoint and parked events.
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Live => "",
            Self::Next => "__next",
            Self::Previous => "__prev",
            Self::Swapping => "__swap",
        }
    }

    /// The name of `name` (a table, an index, a projection) in this
    /// generation, from its name in any generation.
    pub fn name(self, name: &str) -> String {
        format!("{}{}", base_name(name), self.suffix())
    }

    /// Its name in the admin API and the CLI.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Next => "next",
            Self::Previous => "previous",
            Self::Swapping => "swapping",
        }
    }
}

/// `name` without the suffix of the generation it belongs to.
pub fn base_name(name: &str) -> &str {
    [Slot::Next, Slot::Previous, Slot::Swapping]
        .iter()
        .find_map(|slot| name.strip_suffix(slot.suffix()))
        .unwrap_or(name)
}

/// Why an operation on generations was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("{projection} has no {} generation", slot.label())]
    Missing { projection: &'static str, slot: Slot },
    #[error("the next generation of {0} has not been verified against the live one: verify it first")]
    NotVerified(&'static str),
    #[error(
        "the next generation of {projection} differs from the live one in {differences} rows: \
         look at the verification's report, and promote accepting the differences if they are expected"
    )]
    Differs { projection: &'static str, differences: u64 },
    #[error(
        "the columns of {table} differ between the two generations (a migration ran during the rebuild): \
         abandon the rebuild and start it again"
    )]
    ColumnsDiffer { table: String },
    #[error(transparent)]
    Projector(#[from] ProjectorError),
}

impl From<sea_orm::DbErr> for GenerationError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Projector(error.into())
    }
}

/// Where a projection writes a batch: a transaction and the generation
/// whose tables it writes.
pub struct Writer<'a> {
    pub transaction: &'a DatabaseTransaction,
    pub slot: Slot,
}

impl Writer<'_> {
    /// The name of `table` in the generation written.
    pub fn table(&self, table: &str) -> String {
        self.slot.name(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_has_its_own_names_and_they_map_back() {
        assert_eq!(Slot::Live.name("products"), "products");
        assert_eq!(Slot::Next.name("products"), "products__next");
        assert_eq!(Slot::Previous.name("products__next"), "products__prev");
        assert_eq!(Slot::Live.name("orders_newest_first__prev"), "orders_newest_first");
        for slot in Slot::ALL {
            assert_eq!(base_name(&slot.name("catalog")), "catalog");
        }
    }
}
