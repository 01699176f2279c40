//! The projectors' side of the views' database: connecting with the schema
//! brought up to date, and the transactions that write the views.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};

/// Connects to the views ([`views::connect`], with `pool` or a pool size)
/// and applies the migrations the database does not have yet: the
/// projectors own the schema. Processes doing this at once take turns
/// ([`views::migrate`]).
pub async fn connect_and_migrate(url: &str, pool: impl Into<views::Pool>) -> Result<DatabaseConnection, DbErr> {
    let db = views::connect(url, pool).await?;
    views::migrate(&db).await?;
    Ok(db)
}

/// Begins a transaction that writes the views. On SQLite it takes the write
/// lock at `BEGIN`: a deferred transaction that reads before it writes fails
/// with "database is locked" when another projection wrote in between,
/// instead of waiting its turn. Postgres ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Serializes the transactions that write `projection` — its batches and
/// its replays — until this one ends. Taken first, so two writers never
/// hold each other's rows in opposite orders (a deadlock). On Postgres a
/// transaction-scoped advisory lock; on SQLite nothing more is needed, as
/// [`begin_write`] took the database's write lock.
pub async fn lock_projection(transaction: &DatabaseTransaction, projection: &str) -> Result<(), DbErr> {
    if transaction.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let name = format!("shop.projection.{projection}");
    let (key, _) = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).as_u64_pair();
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [key.cast_signed().into()],
        ))
        .await?;
    Ok(())
}

/// Lets `transaction` commit without waiting for its WAL to reach the disk
/// (Postgres' `synchronous_commit = off`; SQLite's WAL mode already syncs
/// lazily): for a rebuild's batches, where a crash may lose the last
/// commits but never half of one — the rows and the checkpoint go
/// together — and the rebuild resumes from the checkpoint that survived.
pub async fn commit_lazily(transaction: &DatabaseTransaction) -> Result<(), DbErr> {
    if transaction.get_database_backend() == DbBackend::Postgres {
        transaction
            .execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    Ok(())
}
