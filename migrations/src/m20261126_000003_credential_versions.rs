//! Each user's credential version (`users.credential_version`): how many
//! events the account's stream holds, which tokens must not be older than.
//!
//! Existing rows cannot know theirs, so they start at 0 ("unknown", which
//! refuses no token) and the users projection is made to replay from the
//! start by dropping its checkpoint: its upserts then fill every row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

use crate::projections;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    CredentialVersion,
}

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    Projection,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer(Users::CredentialVersion).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(Checkpoints::Table)
                    .and_where(Expr::col(Checkpoints::Projection).eq(projections::USERS))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::CredentialVersion)
                    .to_owned(),
            )
            .await
    }
}
