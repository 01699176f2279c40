//! The views: the SQL tables the projectors write and the query API reads,
//! and everything both sides need to use them — the schema and its version
//! check ([`migrate`], [`require_current`]), the entities ([`tables`]), how
//! to connect ([`connect`]), the checkpoints ([`checkpoint`]) and the
//! projections' names ([`projections`]).
//!
//! Only the projectors change the schema (on start, or `projectors
//! migrate`); the query API checks it and refuses to start on an old one.

pub mod checkpoint;
mod connect;
mod m20261126_000001_views;
mod m20261126_000002_projection_leases;
mod m20261126_000003_credential_versions;
mod m20261126_000004_products_name_folded;
mod m20261126_000005_parked_events;
mod m20261126_000006_order_lifecycle;
mod m20261127_000007_projection_generations;
mod m20261127_000008_revoked_tokens;
pub mod projections;
mod schema;
pub mod tables;

pub use connect::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, DEFAULT_URL, PING_AFTER_IDLE, Pool, connect, cores,
    is_unavailable, pool_size,
};
pub use schema::{Migrator, SchemaError, migrate, require_current};
/// What [`connect`] returns, and its error, for callers that hold one
/// without using sea-orm.
pub use sea_orm::{DatabaseConnection, DbErr};
