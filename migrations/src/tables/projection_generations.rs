//! What is known of each generation of a projection beside the live one:
//! who built it, how far, and how it compared with another.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projection_generations")]
pub struct Model {
    /// The generation's key: the projection's name and the generation's
    /// suffix (`catalog__next`), as in `checkpoints`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: String,
    pub projection: String,
    /// The version of the projection that built it.
    pub version: i32,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Events its rebuild has applied.
    pub events_done: i64,
    /// When its rebuild first reached the head of the log.
    pub built_at: Option<DateTimeUtc>,
    pub verified_at: Option<DateTimeUtc>,
    /// The log position both generations stood at when compared.
    pub verified_commit: Option<i64>,
    pub verified_prepare: Option<i64>,
    /// The generation it was compared with (`catalog`).
    pub compared_with: Option<String>,
    /// How many rows differed; 0 for a clean verification.
    pub differences: Option<i64>,
    /// The first differences, as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub report: Option<String>,
    pub promoted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
