//! What is known of each generation of a projection beside the live one
//! (a rebuild's next generation, the previous one a promotion kept): the
//! version of the projection that built it, how far its rebuild got, and
//! the last verification against another generation. Keyed like the
//! checkpoints (`catalog__next`), and renamed with them on promotion.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, string, string_null, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProjectionGenerations {
    Table,
    Generation,
    Projection,
    Version,
    StartedAt,
    UpdatedAt,
    EventsDone,
    BuiltAt,
    VerifiedAt,
    VerifiedCommit,
    VerifiedPrepare,
    ComparedWith,
    Differences,
    Report,
    PromotedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ProjectionGenerations as G;
        manager
            .create_table(
                Table::create()
                    .table(G::Table)
                    .col(string(G::Generation).primary_key())
                    .col(string(G::Projection))
                    .col(integer(G::Version))
                    .col(timestamp_with_time_zone(G::StartedAt))
                    .col(timestamp_with_time_zone(G::UpdatedAt))
                    .col(big_integer(G::EventsDone))
                    .col(timestamp_with_time_zone_null(G::BuiltAt))
                    .col(timestamp_with_time_zone_null(G::VerifiedAt))
                    .col(big_integer_null(G::VerifiedCommit))
                    .col(big_integer_null(G::VerifiedPrepare))
                    .col(string_null(G::ComparedWith))
                    .col(big_integer_null(G::Differences))
                    .col(text_null(G::Report))
                    .col(timestamp_with_time_zone_null(G::PromotedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProjectionGenerations::Table).to_owned())
            .await
    }
}
