//! The read side's tables. Projectors and the query API never create
//! tables themselves; they run [`Migrator`] and use what it made.

mod m20261126_000001_views;
mod m20261126_000002_projection_leases;
pub mod tables;

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_views::Migration),
            Box::new(m20261126_000002_projection_leases::Migration),
        ]
    }
}
