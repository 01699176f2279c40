//! Parked events: the events a projection could not read after its
//! attempts (`POISON_ATTEMPTS`), set aside so that it goes on past them.
//! A row is written in the transaction that moves the projection's
//! checkpoint past its event, so an event is parked exactly once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string, text, timestamp_with_time_zone, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ParkedEvents {
    Table,
    Subscriber,
    CommitPosition,
    PreparePosition,
    Stream,
    Revision,
    EventId,
    EventType,
    Error,
    ParkedBy,
    Attempts,
    ParkedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ParkedEvents::Table)
                    .col(string(ParkedEvents::Subscriber))
                    .col(big_integer(ParkedEvents::CommitPosition))
                    .col(big_integer(ParkedEvents::PreparePosition))
                    .col(string(ParkedEvents::Stream))
                    .col(big_integer(ParkedEvents::Revision))
                    .col(uuid(ParkedEvents::EventId))
                    .col(string(ParkedEvents::EventType))
                    .col(text(ParkedEvents::Error))
                    .col(string(ParkedEvents::ParkedBy))
                    .col(integer(ParkedEvents::Attempts))
                    .col(timestamp_with_time_zone(ParkedEvents::ParkedAt))
                    .primary_key(
                        Index::create()
                            .col(ParkedEvents::Subscriber)
                            .col(ParkedEvents::CommitPosition)
                            .col(ParkedEvents::PreparePosition),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ParkedEvents::Table).to_owned())
            .await
    }
}
