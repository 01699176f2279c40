//! Revoked tokens (`revoked_tokens`): the access tokens logged out one by
//! one, each kept until it would have expired anyway, which verifiers
//! check a token's id (`jti`) against. Written by the users projection.
//! No replay is needed: no build before this one revoked tokens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{timestamp_with_time_zone, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    TokenId,
    UserId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RevokedTokens::Table)
                    .col(uuid(RevokedTokens::TokenId).primary_key())
                    .col(uuid(RevokedTokens::UserId))
                    .col(timestamp_with_time_zone(RevokedTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revoked_tokens_expires_at")
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedTokens::Table).to_owned())
            .await
    }
}
