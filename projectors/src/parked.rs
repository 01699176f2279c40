//! The parked events (`parked_events`): reading and writing their rows,
//! and their metrics, `parked_events_total{subscriber}` (counted as they
//! are parked) and `parked_events{subscriber}` (parked now, as this
//! instance last counted them).

use event_store::{Position, RecordedEvent};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use views::tables::parked_events::{self, Column, Entity};

use crate::generations::base_name;

pub use parked_events::Model as Parked;

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where a parked event is in the log.
pub fn position(parked: &Parked) -> Position {
    Position::new(parked.commit_position as u64, parked.prepare_position as u64)
}

/// What to record of `event` when `subscriber` parks it.
pub struct Parking<'a> {
    pub subscriber: &'a str,
    pub event: &'a RecordedEvent,
    pub error: String,
    pub parked_by: &'a str,
    pub attempts: u32,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

/// Records the event as parked; `false` when it was parked already (the
/// record then stays as it was).
pub async fn park(db: &impl ConnectionTrait, parking: Parking<'_>) -> Result<bool, DbErr> {
    let event = parking.event;
    let row = parked_events::ActiveModel {
        subscriber: Set(parking.subscriber.to_owned()),
        commit_position: Set(to_sql(event.position.commit)),
        prepare_position: Set(to_sql(event.position.prepare)),
        stream: Set(event.stream.clone()),
        revision: Set(to_sql(event.revision)),
        event_id: Set(event.id),
        event_type: Set(event.event_type.clone()),
        error: Set(parking.error),
        parked_by: Set(parking.parked_by.to_owned()),
        attempts: Set(i32::try_from(parking.attempts).unwrap_or(i32::MAX)),
        parked_at: Set(parking.parked_at),
    };
    let conflict = OnConflict::columns([Column::Subscriber, Column::CommitPosition, Column::PreparePosition])
        .do_nothing()
        .to_owned();
    let inserted = Entity::insert(row)
        .on_conflict(conflict)
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Gives the events `from` parked to `to` (which has none): a generation
/// of a projection taking another's place.
pub async fn rename(db: &impl ConnectionTrait, from: &str, to: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Subscriber, Expr::value(to))
        .filter(Column::Subscriber.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

/// Every parked event of the live projections and the saga, oldest first:
/// not those of a rebuild's next generation or of a previous generation
/// (they become live with a promotion or a rollback, and nothing can be
/// retried or skipped in them meanwhile).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Parked>, DbErr> {
    let mut rows = Entity::find()
        .order_by_asc(Column::ParkedAt)
        .order_by_asc(Column::CommitPosition)
        .order_by_asc(Column::PreparePosition)
        .order_by_asc(Column::Subscriber)
        .all(db)
        .await?;
    rows.retain(|row| base_name(&row.subscriber) == row.subscriber);
    Ok(rows)
}

/// The events `subscriber` parked.
pub async fn of(db: &impl ConnectionTrait, subscriber: &str) -> Result<Vec<Parked>, DbErr> {
    Entity::find().filter(Column::Subscriber.eq(subscriber)).all(db).await
}

/// The event `subscriber` parked at `position`, if it did.
pub async fn find(db: &impl ConnectionTrait, subscriber: &str, position: Position) -> Result<Option<Parked>, DbErr> {
    Entity::find_by_id((subscriber.to_owned(), to_sql(position.commit), to_sql(position.prepare)))
        .one(db)
        .await
}

/// Forgets the event `subscriber` parked at `position`; `false` when there
/// was none.
pub async fn remove(db: &impl ConnectionTrait, subscriber: &str, position: Position) -> Result<bool, DbErr> {
    let removed = Entity::delete_by_id((subscriber.to_owned(), to_sql(position.commit), to_sql(position.prepare)))
        .exec(db)
        .await?;
    Ok(removed.rows_affected == 1)
}

/// Forgets every event `subscriber` parked (a replay judges them again).
pub async fn remove_all(db: &impl ConnectionTrait, subscriber: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::Subscriber.eq(subscriber))
        .exec(db)
        .await?;
    Ok(())
}

/// Counts one more failed attempt at the event, with its latest error.
pub async fn failed_again(
    db: &impl ConnectionTrait,
    subscriber: &str,
    position: Position,
    error: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::Error, Expr::value(error.to_owned()))
        .filter(Column::Subscriber.eq(subscriber))
        .filter(Column::CommitPosition.eq(to_sql(position.commit)))
        .filter(Column::PreparePosition.eq(to_sql(position.prepare)))
        .exec(db)
        .await?;
    Ok(())
}

/// Counts `parked` more events parked by `subscriber`.
pub fn count_parked(subscriber: &str, parked: u64) {
    metrics::counter!("parked_events_total", "subscriber" => subscriber.to_owned()).increment(parked);
}

/// Sets `parked_events{subscriber}` to the rows `subscriber` has now.
pub async fn refresh_gauge(db: &impl ConnectionTrait, subscriber: &str) -> Result<(), DbErr> {
    let parked = Entity::find()
        .filter(Column::Subscriber.eq(subscriber))
        .count(db)
        .await?;
    metrics::gauge!("parked_events", "subscriber" => subscriber.to_owned()).set(parked as f64);
    Ok(())
}
