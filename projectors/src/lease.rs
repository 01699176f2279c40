//! Which projector instance runs a projection: a lease in the views
//! database that its holder renews, and another instance takes over when
//! it is released (a clean stop) or expires (a crash). This decides on
//! SQLite; on Postgres a session lock decides and the row only records its
//! holder ([`record`]; `claim.rs`).
//!
//! Leases keep instances from doing the same work twice; correctness does
//! not rest on them (the checkpoint moves by compare-and-set), so clock
//! skew between instances costs duplicated work at worst.

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use views::tables::projection_leases;

/// Takes the lease on `projection` for `holder`, or renews it, until
/// `ttl` from now; `false` while another holder's lease runs.
pub async fn acquire(db: &impl ConnectionTrait, projection: &str, holder: &str, ttl: Duration) -> Result<bool, DbErr> {
    let now = chrono::Utc::now();
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let lease = projection_leases::ActiveModel {
        projection: Set(projection.to_owned()),
        holder: Set(holder.to_owned()),
        expires_at: Set(expires_at),
    };
    let column = |column| Expr::col((projection_leases::Entity, column));
    let taken = projection_leases::Entity::insert(lease)
        .on_conflict(
            OnConflict::column(projection_leases::Column::Projection)
                .update_columns([projection_leases::Column::Holder, projection_leases::Column::ExpiresAt])
                .action_and_where(
                    ExprTrait::eq(column(projection_leases::Column::Holder), holder)
                        .or(column(projection_leases::Column::ExpiresAt).lt(now)),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(taken == 1)
}

/// Writes that `holder` has the lease on `projection` until `ttl` from
/// now, whoever had it: for the holder of the Postgres session lock, which
/// is what entitles it.
pub async fn record(db: &impl ConnectionTrait, projection: &str, holder: &str, ttl: Duration) -> Result<(), DbErr> {
    let lease = projection_leases::ActiveModel {
        projection: Set(projection.to_owned()),
        holder: Set(holder.to_owned()),
        expires_at: Set(chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)),
    };
    projection_leases::Entity::insert(lease)
        .on_conflict(
            OnConflict::column(projection_leases::Column::Projection)
                .update_columns([projection_leases::Column::Holder, projection_leases::Column::ExpiresAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Every lease, live or expired.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<projection_leases::Model>, DbErr> {
    projection_leases::Entity::find().all(db).await
}

/// Gives the lease up, if `holder` has it, so another instance need not
/// wait for it to expire.
pub async fn release(db: &impl ConnectionTrait, projection: &str, holder: &str) -> Result<(), DbErr> {
    projection_leases::Entity::delete_many()
        .filter(projection_leases::Column::Projection.eq(projection))
        .filter(projection_leases::Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}
