//! Rebuilding a projection from the start of the log.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, TransactionTrait};

use crate::projection::Projection;

/// Empties the projection's tables and forgets its checkpoint, in one
/// transaction. A projector running on these views notices at its next
/// commit (its checkpoint moved) and rebuilds from the start.
pub async fn reset(db: &DatabaseConnection, projection: &dyn Projection) -> Result<(), DbErr> {
    let transaction = db.begin().await?;
    for table in projection.tables() {
        transaction.execute_unprepared(&format!("DELETE FROM {table}")).await?;
    }
    migrations::views::checkpoints::Entity::delete_by_id(projection.name().to_owned())
        .exec(&transaction)
        .await?;
    transaction.commit().await
}
