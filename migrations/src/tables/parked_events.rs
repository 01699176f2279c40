//! Events a subscriber could not handle after its attempts, set aside:
//! one row per subscriber and position, until an admin retries or skips it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parked_events")]
pub struct Model {
    /// The projection that parked it (`catalog`, `users`, `orders`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub subscriber: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub commit_position: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub prepare_position: i64,
    pub stream: String,
    /// Its number in its stream: how a retry reads it again.
    pub revision: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// Why it could not be handled, at the last attempt.
    pub error: String,
    /// The projector instance that parked it.
    pub parked_by: String,
    /// How many times it was tried (retries by admins included).
    pub attempts: i32,
    pub parked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
