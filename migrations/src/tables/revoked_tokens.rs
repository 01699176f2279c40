//! Access tokens logged out one by one, until they expire.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revoked_tokens")]
pub struct Model {
    /// The token's `jti`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_id: Uuid,
    pub user_id: Uuid,
    /// The token's own expiry: past it (and the verifiers' leeway) the row
    /// can go.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Whether the token `token_id` was revoked: one primary-key read.
pub async fn is_revoked(db: &impl ConnectionTrait, token_id: Uuid) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(token_id).one(db).await?.is_some())
}

/// What a revocation lookup answers (the shape `api_common::credentials`
/// takes).
pub type RevocationLookup =
    std::pin::Pin<Box<dyn Future<Output = Result<bool, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// [`is_revoked`] over `db` as a source for the query API's and the admin
/// API's verifiers.
pub fn revocations(db: DatabaseConnection) -> impl Fn(Uuid) -> RevocationLookup + Send + Sync + 'static {
    move |token_id| {
        let db = db.clone();
        Box::pin(async move { Ok(is_revoked(&db, token_id).await?) })
    }
}
