//! Order headers: status, payment, totals, contact, shipping, why an order
//! was rejected or refused, and when it was settled, closed or is due.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `pending`, `confirmed`, `rejected`, `cancelled` or `closed`.
    pub status: String,
    /// `pending`, `arranged`, `void`, `settled`, `cancelled` or `refunded`.
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
    /// The payment provider's reference, once settled.
    pub payment_reference: Option<String>,
    pub settled_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    /// When the payment window ends: while confirmed and unpaid, for orders
    /// whose confirmation recorded it.
    pub expires_at: Option<DateTimeUtc>,
    /// JSON: the domain's `Refusal` (`{code, ...}`), once refused. Apart
    /// from `failures`, which are about lines: a refusal is about the order.
    pub refusal: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
