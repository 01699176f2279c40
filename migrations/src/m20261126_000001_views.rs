//! The first views: catalog, users, orders with their lines, and the
//! checkpoints that record how far each projection has read the log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, string, string_null, text_null, timestamp_with_time_zone, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    Projection,
    CommitPosition,
    PreparePosition,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    ProductId,
    Sku,
    Name,
    PriceMinor,
    Available,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    UserId,
    Username,
    DisplayName,
    Role,
    RegisteredAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    OrderId,
    CustomerId,
    Status,
    PaymentStatus,
    TotalMinor,
    CustomerName,
    CustomerEmail,
    CustomerPhone,
    Address,
    City,
    State,
    Country,
    PostalCode,
    Failures,
    CancelReason,
    PlacedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    OrderId,
    LineNo,
    ProductId,
    Sku,
    Name,
    Quantity,
    UnitPriceMinor,
    LineTotalMinor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [checkpoints(), products(), users(), orders(), order_lines()] {
            manager.create_table(table).await?;
        }
        manager.create_index(orders_by_customer_newest_first()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrderLines::Table.into_iden(),
            Orders::Table.into_iden(),
            Users::Table.into_iden(),
            Products::Table.into_iden(),
            Checkpoints::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

fn checkpoints() -> TableCreateStatement {
    Table::create()
        .table(Checkpoints::Table)
        .col(string(Checkpoints::Projection).primary_key())
        .col(big_integer(Checkpoints::CommitPosition))
        .col(big_integer(Checkpoints::PreparePosition))
        .col(timestamp_with_time_zone(Checkpoints::UpdatedAt))
        .to_owned()
}

fn products() -> TableCreateStatement {
    Table::create()
        .table(Products::Table)
        .col(uuid(Products::ProductId).primary_key())
        .col(string(Products::Sku).unique_key())
        .col(string(Products::Name))
        .col(big_integer(Products::PriceMinor))
        .col(big_integer(Products::Available))
        .col(timestamp_with_time_zone(Products::CreatedAt))
        .col(timestamp_with_time_zone(Products::UpdatedAt))
        .to_owned()
}

fn users() -> TableCreateStatement {
    Table::create()
        .table(Users::Table)
        .col(uuid(Users::UserId).primary_key())
        .col(string(Users::Username).unique_key())
        .col(string(Users::DisplayName))
        .col(string(Users::Role))
        .col(timestamp_with_time_zone(Users::RegisteredAt))
        .to_owned()
}

fn orders() -> TableCreateStatement {
    Table::create()
        .table(Orders::Table)
        .col(uuid(Orders::OrderId).primary_key())
        .col(uuid(Orders::CustomerId))
        .col(string(Orders::Status))
        .col(string(Orders::PaymentStatus))
        .col(big_integer_null(Orders::TotalMinor))
        .col(string_null(Orders::CustomerName))
        .col(string_null(Orders::CustomerEmail))
        .col(string(Orders::CustomerPhone))
        .col(string(Orders::Address))
        .col(string(Orders::City))
        .col(string(Orders::State))
        .col(string(Orders::Country))
        .col(string(Orders::PostalCode))
        .col(text_null(Orders::Failures))
        .col(string_null(Orders::CancelReason))
        .col(timestamp_with_time_zone(Orders::PlacedAt))
        .col(timestamp_with_time_zone(Orders::UpdatedAt))
        .to_owned()
}

/// `GET /me/orders`: a customer's orders, newest first, paged by cursor.
fn orders_by_customer_newest_first() -> IndexCreateStatement {
    Index::create()
        .name("orders_by_customer_newest_first")
        .table(Orders::Table)
        .col(Orders::CustomerId)
        .col((Orders::PlacedAt, IndexOrder::Desc))
        .col(Orders::OrderId)
        .to_owned()
}

fn order_lines() -> TableCreateStatement {
    Table::create()
        .table(OrderLines::Table)
        .col(uuid(OrderLines::OrderId))
        .col(integer(OrderLines::LineNo))
        .col(uuid(OrderLines::ProductId))
        .col(string_null(OrderLines::Sku))
        .col(string_null(OrderLines::Name))
        .col(integer(OrderLines::Quantity))
        .col(big_integer_null(OrderLines::UnitPriceMinor))
        .col(big_integer_null(OrderLines::LineTotalMinor))
        .primary_key(Index::create().col(OrderLines::OrderId).col(OrderLines::LineNo))
        .to_owned()
}
