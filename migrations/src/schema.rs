//! The schema: the migrations, applying them, and checking that a database
//! has them all without changing it.

use std::collections::BTreeSet;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::prelude::*;
use sea_orm_migration::seaql_migrations;

use crate::{
    m20261126_000001_views, m20261126_000002_projection_leases, m20261126_000003_credential_versions,
    m20261126_000004_products_name_folded, m20261126_000005_parked_events, m20261126_000006_order_lifecycle,
    m20261127_000007_projection_generations, m20261127_000008_revoked_tokens,
};

/// Every migration, oldest first. sea-orm-migration records the applied
/// ones in `seaql_migrations`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_views::Migration),
            Box::new(m20261126_000002_projection_leases::Migration),
            Box::new(m20261126_000003_credential_versions::Migration),
            Box::new(m20261126_000004_products_name_folded::Migration),
            Box::new(m20261126_000005_parked_events::Migration),
            Box::new(m20261126_000006_order_lifecycle::Migration),
            Box::new(m20261127_000007_projection_generations::Migration),
            Box::new(m20261127_000008_revoked_tokens::Migration),
        ]
    }
}

/// Why a database cannot be read by this build.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the views database has no schema (no migration applied) but this build needs {needs}: run `projectors migrate`"
    )]
    Empty { needs: String },
    #[error(
        "the views schema is at {at} but this build needs {}: run `projectors migrate`",
        missing.join(", ")
    )]
    Behind { at: String, missing: Vec<String> },
    #[error("cannot read the views schema's version: {0}")]
    Database(#[from] DbErr),
}

/// Applies every migration `db` does not have yet (DDL: the projectors'
/// job, never the query API's), in one transaction that holds the schema's
/// lock first, so processes migrating at once take turns: the first
/// applies them, the next finds nothing left to do. On Postgres the lock is
/// a transaction-scoped advisory lock ([`SCHEMA_LOCK`]); on SQLite the
/// database's write lock, taken at `BEGIN` (a process that waits for it
/// longer than SQLite's busy timeout gets "database is locked", which
/// [`crate::is_unavailable`] counts as an outage to wait out). The
/// migrations commit together, or none does.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let transaction = db.begin_with_options(options).await?;
    if transaction.get_database_backend() == DbBackend::Postgres {
        let lock = "SELECT pg_advisory_xact_lock($1)";
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, lock, [SCHEMA_LOCK.into()]);
        transaction.execute_raw(statement).await?;
    }
    Migrator::up(&transaction, None).await?;
    transaction.commit().await
}

/// The key of the advisory lock that serializes migrations on Postgres:
/// "shopview" in ASCII, apart from the projections' keys (UUIDv5-derived).
const SCHEMA_LOCK: i64 = 0x7368_6f70_7669_6577;

/// Checks that `db` has every migration of this build, without changing
/// it: `seaql_migrations` is only read, never created (sea-orm-migration's
/// own status queries create it). Migrations this build does not know are
/// accepted: a newer release's projectors may have migrated first, and a
/// migration only adds to the schema.
pub async fn require_current(db: &DatabaseConnection) -> Result<(), SchemaError> {
    let applied = applied(db).await?;
    let missing: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .filter(|name| !applied.contains(name))
        .collect();
    // Versions start with their date, so the greatest is the latest.
    match (missing.last(), applied.last()) {
        (None, _) => Ok(()),
        (Some(latest), None) => Err(SchemaError::Empty { needs: latest.clone() }),
        (Some(_), Some(at)) => Err(SchemaError::Behind {
            at: at.clone(),
            missing,
        }),
    }
}

/// The versions recorded in `seaql_migrations`; none when it does not exist.
async fn applied(db: &DatabaseConnection) -> Result<BTreeSet<String>, DbErr> {
    let table = Migrator::migration_table_name().to_string();
    if !SchemaManager::new(db).has_table(&table).await? {
        return Ok(BTreeSet::new());
    }
    let rows = seaql_migrations::Entity::find().all(db).await?;
    Ok(rows.into_iter().map(|row| row.version).collect())
}
