//! The query side of Shop: reads the SQL views the projectors keep, never
//! writes. Stateless, so any number of instances can serve the same views.
//!
//! - `http/`: one API struct per resource;
//! - `freshness.rs`: read-your-writes against the projections' checkpoints;
//! - `startup.rs`, `config.rs`: wiring and configuration.

pub mod config;
pub mod freshness;
pub mod http;
pub mod startup;

pub use http::spec;
