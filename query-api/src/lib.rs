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

/// The OpenAPI document, built on an in-memory database: the spec does not
/// depend on the data.
pub async fn spec_without_state() -> String {
    let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
    options.sqlx_logging(false);
    let db = sea_orm::Database::connect(options)
        .await
        .expect("an in-memory SQLite database opens");
    http::spec(&startup::views(db, std::time::Duration::ZERO))
}
