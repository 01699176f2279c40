//! What is known of a projection's generations (`projection_generations`):
//! the version that built each, its rebuild's progress and its last
//! verification. The live generation of a projection never rebuilt has no
//! row: it was built by version 1.

use event_store::Position;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use views::tables::projection_generations::{ActiveModel, Column, Entity};

pub use views::tables::projection_generations::Model as Generation;

use super::Slot;

/// The record of `projection`'s generation in `slot`.
pub async fn of(db: &impl ConnectionTrait, projection: &str, slot: Slot) -> Result<Option<Generation>, DbErr> {
    Entity::find_by_id(slot.name(projection)).one(db).await
}

/// The records of every projection's generations.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Generation>, DbErr> {
    Entity::find().all(db).await
}

/// Records a rebuild of `projection` by `version` into the next
/// generation, starting now.
pub async fn start(db: &impl ConnectionTrait, projection: &str, version: u32) -> Result<(), DbErr> {
    insert(db, projection, Slot::Next, version).await
}

async fn insert(db: &impl ConnectionTrait, projection: &str, slot: Slot, version: u32) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    ActiveModel {
        generation: Set(slot.name(projection)),
        projection: Set(projection.to_owned()),
        version: Set(i32::try_from(version).unwrap_or(i32::MAX)),
        started_at: Set(now),
        updated_at: Set(now),
        events_done: Set(0),
        built_at: Set(None),
        verified_at: Set(None),
        verified_commit: Set(None),
        verified_prepare: Set(None),
        compared_with: Set(None),
        differences: Set(None),
        report: Set(None),
        promoted_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Counts `events` more applied by the rebuild of `projection`, in the
/// transaction of the batch that applied them: the count is exact across
/// stops.
pub async fn progress(db: &impl ConnectionTrait, projection: &str, events: u64) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(
            Column::EventsDone,
            Expr::col(Column::EventsDone).add(i64::try_from(events).unwrap_or(i64::MAX)),
        )
        .col_expr(Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(Column::Generation.eq(Slot::Next.name(projection)))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that the rebuild of `projection` has reached the head of the
/// log (the first time counts).
pub async fn built(db: &impl ConnectionTrait, projection: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::BuiltAt, Expr::value(chrono::Utc::now()))
        .filter(Column::Generation.eq(Slot::Next.name(projection)))
        .filter(Column::BuiltAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// What a verification of a generation found.
pub struct Verified<'a> {
    pub compared_with: &'a str,
    pub position: Option<Position>,
    pub differences: u64,
    pub report: String,
}

/// Records the verification of `projection`'s generation in `slot`; a live
/// generation with no record gets one.
pub async fn verified(
    db: &impl ConnectionTrait,
    projection: &str,
    slot: Slot,
    verified: Verified<'_>,
) -> Result<(), DbErr> {
    ensure(db, projection, slot).await?;
    let to_sql = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let now = chrono::Utc::now();
    Entity::update_many()
        .col_expr(Column::VerifiedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(
            Column::VerifiedCommit,
            Expr::value(verified.position.map(|p| to_sql(p.commit))),
        )
        .col_expr(
            Column::VerifiedPrepare,
            Expr::value(verified.position.map(|p| to_sql(p.prepare))),
        )
        .col_expr(Column::ComparedWith, Expr::value(verified.compared_with))
        .col_expr(Column::Differences, Expr::value(to_sql(verified.differences)))
        .col_expr(Column::Report, Expr::value(verified.report))
        .filter(Column::Generation.eq(slot.name(projection)))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves the record of `projection`'s generation from `from` to `to`
/// (which has none); a live generation with no record gets one first, so
/// that its version travels with it. Promotion stamps the record.
pub async fn rename(db: &impl ConnectionTrait, projection: &str, from: Slot, to: Slot) -> Result<(), DbErr> {
    ensure(db, projection, from).await?;
    let mut update = Entity::update_many()
        .col_expr(Column::Generation, Expr::value(to.name(projection)))
        .filter(Column::Generation.eq(from.name(projection)));
    if from == Slot::Next && to == Slot::Live {
        // Its verification compared it with what is now the previous
        // generation: said of the live one, it would mislead.
        update = update
            .col_expr(Column::PromotedAt, Expr::value(chrono::Utc::now()))
            .col_expr(
                Column::VerifiedAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .col_expr(Column::Differences, Expr::value(Option::<i64>::None))
            .col_expr(Column::ComparedWith, Expr::value(Option::<String>::None));
    }
    update.exec(db).await?;
    Ok(())
}

/// Forgets the record of `projection`'s generation in `slot`.
pub async fn remove(db: &impl ConnectionTrait, projection: &str, slot: Slot) -> Result<(), DbErr> {
    Entity::delete_by_id(slot.name(projection)).exec(db).await?;
    Ok(())
}

/// Gives a live generation with no record one (version 1, built before
/// records were kept); other generations always have one.
async fn ensure(db: &impl ConnectionTrait, projection: &str, slot: Slot) -> Result<(), DbErr> {
    if slot != Slot::Live || of(db, projection, slot).await?.is_some() {
        return Ok(());
    }
    insert(db, projection, slot, 1).await
}
