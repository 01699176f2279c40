//! The migration that adds the products' search key fills it for the rows
//! already there, with the function the catalog projection uses, on SQLite
//! and on Postgres: an existing database needs no replay.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use domain::search::fold;
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use views::{Migrator, SchemaError};

const MIGRATION: &str = "m20261126_000004_products_name_folded";

/// More rows than the migration fills per page, with names SQL's `lower()`
/// would fold differently (or not at all) on one backend or the other.
const ROWS: usize = 1_203;

fn name(index: usize) -> String {
    let names = ["Éclair", "E\u{301}CLAIR", "Straße", "ΟΔΥΣΣΕΥΣ", "Plain MUG", "東京"];
    format!("{} {index}", names[index % names.len()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let (url, _keep) = test_support::sqlite_views();
    fills_the_key_of_existing_rows(views::connect(&url, 1).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let url = test_support::postgres::fresh_database().await;
    fills_the_key_of_existing_rows(views::connect(&url, 1).await.unwrap()).await;
}

async fn fills_the_key_of_existing_rows(db: DatabaseConnection) {
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == MIGRATION)
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(before).unwrap())).await.unwrap();
    insert_products(&db).await;
    let error = views::require_current(&db).await.unwrap_err();
    assert!(
        matches!(&error, SchemaError::Behind { missing, .. } if missing.iter().any(|m| m == MIGRATION)),
        "{error:?}"
    );
    views::migrate(&db).await.unwrap();
    let select = "SELECT name, name_folded FROM products ORDER BY name";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), select))
        .await
        .unwrap();
    assert_eq!(rows.len(), ROWS);
    for row in rows {
        let name: String = row.try_get("", "name").unwrap();
        let folded: String = row.try_get("", "name_folded").unwrap();
        assert_eq!(folded, fold(&name), "{name:?}");
    }
}

/// Products as the catalog wrote them before the migration.
async fn insert_products(db: &DatabaseConnection) {
    let columns = [
        "product_id",
        "sku",
        "name",
        "price_minor",
        "available",
        "created_at",
        "updated_at",
    ];
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("products"))
        .columns(columns.map(Alias::new));
    let now = chrono::Utc::now();
    for index in 0..ROWS {
        let values: [sea_orm::Value; 7] = [
            uuid::Uuid::new_v4().into(),
            format!("SKU-{index}").into(),
            name(index).into(),
            100i64.into(),
            1i64.into(),
            now.into(),
            now.into(),
        ];
        insert.values_panic(values.map(Into::into));
    }
    db.execute(&insert).await.unwrap();
}
