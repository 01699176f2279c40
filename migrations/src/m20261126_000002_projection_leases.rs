//! Leases: which projector instance runs each projection.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProjectionLeases {
    Table,
    Projection,
    Holder,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProjectionLeases::Table)
                    .col(string(ProjectionLeases::Projection).primary_key())
                    .col(string(ProjectionLeases::Holder))
                    .col(timestamp_with_time_zone(ProjectionLeases::ExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProjectionLeases::Table).to_owned())
            .await
    }
}
