//! Projectors: each projection follows the global event log from its own
//! checkpoint and keeps denormalized SQL views (Postgres or SQLite, through
//! sea-orm; tables come only from the `views` crate in `migrations/`).
//!
//! Events are applied in batches (what the log has ready, at most
//! [`runner::ProjectorOptions::batch_size`]) inside one transaction that also
//! moves the checkpoint, so a stop at any point and a restart give exactly
//! the rows an uninterrupted run gives. The checkpoint moves by
//! compare-and-set: a replay, or a second projector on the same views, makes
//! the other's commit fail and restart from the stored checkpoint instead of
//! applying anything twice.

pub mod admin;
pub mod catalog;
pub mod claim;
pub mod config;
pub mod database;
pub mod generations;
pub mod instance;
pub mod lease;
pub mod orders;
pub mod parked;
pub mod projection;
pub mod quarantine;
pub mod revoked_tokens;
pub mod rows;
pub mod runner;
pub mod session_lock;
pub mod supervisor;
pub mod unpark;
pub mod users;

use std::sync::Arc;

use projection::Projection;

/// Every projection, in a fixed order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(catalog::Catalog),
        Arc::new(users::Users),
        Arc::new(orders::Orders),
    ]
}

/// The projection called `name`.
pub fn named(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|projection| projection.name() == name)
}
