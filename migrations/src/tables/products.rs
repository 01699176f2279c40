//! The catalog with available stock.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: Uuid,
    #[sea_orm(unique)]
    pub sku: String,
    pub name: String,
    /// The name as `domain::search::fold` folds it: what a name search
    /// matches, alike on SQLite and Postgres.
    pub name_folded: String,
    /// Minor units.
    pub price_minor: i64,
    pub available: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
