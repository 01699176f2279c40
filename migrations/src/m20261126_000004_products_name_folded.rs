//! The products' search key: `name_folded`, the name as
//! [`domain::search::fold`] folds it, which a name search matches (SQLite's
//! `lower()` and `LIKE` fold ASCII only, Postgres' follow the locale: SQL
//! cannot fold the same way on both).
//!
//! The rows already there are filled here, in Rust, with the function the
//! catalog projection uses: no replay needed. A row an older projector
//! writes after this migration (a rolling upgrade) keeps an empty or stale
//! key until `projectors replay catalog`.

use domain::search::fold;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string;
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::sea_orm::prelude::Uuid;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Products {
    Table,
    ProductId,
    Name,
    NameFolded,
}

/// Rows read and rewritten per query while filling the key.
const PAGE: u64 = 1_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = string(Products::NameFolded).default("").to_owned();
        manager
            .alter_table(Table::alter().table(Products::Table).add_column(column).to_owned())
            .await?;
        fill(manager.get_connection()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .drop_column(Products::NameFolded)
                    .to_owned(),
            )
            .await
    }
}

/// Sets every row's key from its name, a page at a time in product id
/// order (the migration's transaction makes it all or nothing).
async fn fill(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let mut after: Option<Uuid> = None;
    loop {
        let mut page = Query::select();
        page.columns([Products::ProductId, Products::Name])
            .from(Products::Table)
            .order_by(Products::ProductId, Order::Asc)
            .limit(PAGE);
        if let Some(id) = after {
            page.and_where(Expr::col(Products::ProductId).gt(id));
        }
        let rows = db.query_all(&page).await?;
        for row in &rows {
            let id: Uuid = row.try_get("", "product_id")?;
            let name: String = row.try_get("", "name")?;
            let update = Query::update()
                .table(Products::Table)
                .value(Products::NameFolded, fold(&name))
                .and_where(Expr::col(Products::ProductId).eq(id))
                .to_owned();
            db.execute(&update).await?;
            after = Some(id);
        }
        if (rows.len() as u64) < PAGE {
            return Ok(());
        }
    }
}
