//! User profiles. No password hash ever reaches this table.

use sea_orm::QuerySelect;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub registered_at: DateTimeUtc,
    /// The number of events in the account's stream when last projected;
    /// tokens carrying an older `ver` are refused. 0: not known yet.
    pub credential_version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The user's credential version as the view knows it; `None` when the
/// user has no row yet or its version is not known yet (0).
pub async fn credential_version(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<u64>, DbErr> {
    let version = Entity::find_by_id(user_id)
        .select_only()
        .column(Column::CredentialVersion)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(version
        .and_then(|version| u64::try_from(version).ok())
        .filter(|version| *version > 0))
}

/// What a version lookup answers (the shape `api_common::credentials`
/// takes, so verifiers use [`credential_versions`] as their source).
pub type VersionLookup =
    std::pin::Pin<Box<dyn Future<Output = Result<Option<u64>, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// [`credential_version`] over `db` as a source for the query API's and
/// the admin API's verifiers: one primary-key read per call.
pub fn credential_versions(db: DatabaseConnection) -> impl Fn(Uuid) -> VersionLookup + Send + Sync + 'static {
    move |user_id| {
        let db = db.clone();
        Box::pin(async move { Ok(credential_version(&db, user_id).await?) })
    }
}
