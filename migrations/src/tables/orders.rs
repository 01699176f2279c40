//! Order headers: status, payment, totals, contact, shipping, and why an
//! order was rejected.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `pending`, `confirmed`, `rejected` or `cancelled`.
    pub status: String,
    /// `pending`, `arranged`, `void` or `refunded`.
    pub payment_status: String,
    /// Minor units, once confirmed.
    pub total_minor: Option<i64>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub customer_phone: String,
    pub address: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub postal_code: String,
    /// JSON: `[{productId, reason, requested?, available?}]`, once rejected.
    pub failures: Option<String>,
    pub cancel_reason: Option<String>,
    pub placed_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
