//! The order lifecycle (#12): the payment's reference and when it was
//! settled, when the order was closed, when its payment window ends, and
//! why the saga refused it; and the indexes of the admins' list of every
//! order, newest first, whole or filtered by one status.
//!
//! The new columns are empty on the rows already there: nothing before this
//! migration was settled, closed or refused, and an order confirmed before
//! it shows no deadline until `projectors replay orders` (its event may
//! carry none anyway). Orders cancelled before it were never paid: their
//! payment, which older builds showed as `refunded`, becomes `cancelled`,
//! as the projection now writes it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_null, text_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    OrderId,
    Status,
    PaymentStatus,
    PaymentReference,
    SettledAt,
    ClosedAt,
    ExpiresAt,
    Refusal,
    PlacedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string_null(Orders::PaymentReference),
            timestamp_with_time_zone_null(Orders::SettledAt),
            timestamp_with_time_zone_null(Orders::ClosedAt),
            timestamp_with_time_zone_null(Orders::ExpiresAt),
            text_null(Orders::Refusal),
        ] {
            let alter = Table::alter().table(Orders::Table).add_column(column).to_owned();
            manager.alter_table(alter).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(Orders::Table)
                    .value(Orders::PaymentStatus, "cancelled")
                    .and_where(Expr::col(Orders::Status).eq("cancelled"))
                    .and_where(Expr::col(Orders::PaymentStatus).eq("refunded"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Orders::Table).to_owned())
                .await?;
        }
        for column in [
            Orders::PaymentReference,
            Orders::SettledAt,
            Orders::ClosedAt,
            Orders::ExpiresAt,
            Orders::Refusal,
        ] {
            let alter = Table::alter().table(Orders::Table).drop_column(column).to_owned();
            manager.alter_table(alter).await?;
        }
        Ok(())
    }
}

/// The indexes of `GET /orders` (admins): every order newest first, optionally of one
/// status or one payment status. Each index reads a filtered page in order
/// and stops at its limit, where one index for all three would sort.
const INDEXES: [&str; 3] = [
    "orders_newest_first",
    "orders_by_status_newest_first",
    "orders_by_payment_status_newest_first",
];

/// The [`INDEXES`], in their order.
fn indexes() -> [IndexCreateStatement; 3] {
    let newest_first = |name: &str, filter: Option<Orders>| {
        let mut index = Index::create().name(name).table(Orders::Table).to_owned();
        if let Some(filter) = filter {
            index.col(filter);
        }
        index
            .col((Orders::PlacedAt, IndexOrder::Desc))
            .col((Orders::OrderId, IndexOrder::Desc))
            .to_owned()
    };
    [
        newest_first(INDEXES[0], None),
        newest_first(INDEXES[1], Some(Orders::Status)),
        newest_first(INDEXES[2], Some(Orders::PaymentStatus)),
    ]
}
