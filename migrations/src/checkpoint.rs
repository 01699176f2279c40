//! Checkpoints: the position of the last event a projection applied,
//! written in the same transaction as the rows that event produced.

use crate::tables::checkpoints;
use domain::Position;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub async fn load(db: &impl ConnectionTrait, projection: &str) -> Result<Option<Position>, DbErr> {
    let row = checkpoints::Entity::find_by_id(projection.to_owned()).one(db).await?;
    Ok(row.map(|row| Position::new(row.commit_position as u64, row.prepare_position as u64)))
}

/// Every projection's checkpoint.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<(String, Position)>, DbErr> {
    let rows = checkpoints::Entity::find().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.projection,
                Position::new(row.commit_position as u64, row.prepare_position as u64),
            )
        })
        .collect())
}

/// Moves the checkpoint from `previous` to `next`; `false` when it was not
/// at `previous` any more (a replay reset it, or another projector moved it),
/// in which case the caller must roll back.
pub async fn advance(
    db: &impl ConnectionTrait,
    projection: &str,
    previous: Option<Position>,
    next: Position,
) -> Result<bool, DbErr> {
    let now = chrono::Utc::now();
    let moved = match previous {
        None => {
            let row = checkpoints::ActiveModel {
                projection: Set(projection.to_owned()),
                commit_position: Set(to_sql(next.commit)),
                prepare_position: Set(to_sql(next.prepare)),
                updated_at: Set(now),
            };
            checkpoints::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(checkpoints::Column::Projection)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?
        }
        Some(previous) => {
            checkpoints::Entity::update_many()
                .col_expr(checkpoints::Column::CommitPosition, Expr::value(to_sql(next.commit)))
                .col_expr(checkpoints::Column::PreparePosition, Expr::value(to_sql(next.prepare)))
                .col_expr(checkpoints::Column::UpdatedAt, Expr::value(now))
                .filter(checkpoints::Column::Projection.eq(projection))
                .filter(checkpoints::Column::CommitPosition.eq(to_sql(previous.commit)))
                .filter(checkpoints::Column::PreparePosition.eq(to_sql(previous.prepare)))
                .exec(db)
                .await?
                .rows_affected
        }
    };
    Ok(moved == 1)
}

/// Gives `from`'s checkpoint to `to` (which has none): a generation of a
/// projection taking another's place (`projectors::generations::swap`).
pub async fn rename(db: &impl ConnectionTrait, from: &str, to: &str) -> Result<(), DbErr> {
    checkpoints::Entity::update_many()
        .col_expr(checkpoints::Column::Projection, Expr::value(to))
        .filter(checkpoints::Column::Projection.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets the checkpoint to `position` whatever it was; `None` forgets it.
pub async fn overwrite(db: &impl ConnectionTrait, projection: &str, position: Option<Position>) -> Result<(), DbErr> {
    let Some(position) = position else {
        checkpoints::Entity::delete_by_id(projection.to_owned())
            .exec(db)
            .await?;
        return Ok(());
    };
    let row = checkpoints::ActiveModel {
        projection: Set(projection.to_owned()),
        commit_position: Set(to_sql(position.commit)),
        prepare_position: Set(to_sql(position.prepare)),
        updated_at: Set(chrono::Utc::now()),
    };
    checkpoints::Entity::insert(row)
        .on_conflict(
            OnConflict::column(checkpoints::Column::Projection)
                .update_columns([
                    checkpoints::Column::CommitPosition,
                    checkpoints::Column::PreparePosition,
                    checkpoints::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
