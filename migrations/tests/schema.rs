//! The schema's version check on a real SQLite file: it names what is
//! missing, accepts a current or newer schema, and never changes the
//! database it checks.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use views::{Migrator, SchemaError};

/// Every migration's name, oldest first: the tests follow the list, so a
/// new migration needs no edit here.
fn names() -> Vec<String> {
    Migrator::migrations().iter().map(|m| m.name().to_owned()).collect()
}

fn latest() -> String {
    names().last().unwrap().clone()
}

async fn empty_file() -> (DatabaseConnection, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    (views::connect(&url, 1).await.unwrap(), folder)
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        ))
        .await
        .unwrap();
    rows.iter().map(|row| row.try_get("", "name").unwrap()).collect()
}

#[tokio::test]
async fn an_empty_database_is_refused_and_left_empty() {
    let (db, _folder) = empty_file().await;
    let error = views::require_current(&db).await.unwrap_err();
    let latest = latest();
    assert!(
        matches!(&error, SchemaError::Empty { needs } if *needs == latest),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the views database has no schema (no migration applied) but this build needs {latest}: run `projectors migrate`"
        )
    );
    assert_eq!(tables(&db).await, Vec::<String>::new(), "the check created nothing");
}

#[tokio::test]
async fn a_schema_missing_the_latest_migration_is_refused_naming_it() {
    let (db, _folder) = empty_file().await;
    let names = names();
    let (previous, latest) = (&names[names.len() - 2], latest());
    Migrator::up(&db, Some(u32::try_from(names.len() - 1).unwrap()))
        .await
        .unwrap();
    let before = tables(&db).await;
    let error = views::require_current(&db).await.unwrap_err();
    assert!(
        matches!(&error, SchemaError::Behind { at, missing } if at == previous && missing == std::slice::from_ref(&latest)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("the views schema is at {previous} but this build needs {latest}: run `projectors migrate`")
    );
    assert_eq!(tables(&db).await, before, "the check changed nothing");
}

#[tokio::test]
async fn a_migrated_database_is_accepted_and_so_is_a_newer_one() {
    let (db, _folder) = empty_file().await;
    views::migrate(&db).await.unwrap();
    views::require_current(&db).await.unwrap();
    // A newer release's projectors migrated further than this build knows.
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)",
    )
    .await
    .unwrap();
    views::require_current(&db).await.unwrap();
}

/// The names of the columns of `table`, or of its indexes, on SQLite.
async fn names_of(db: &DatabaseConnection, pragma: &str, table: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("SELECT name FROM pragma_{pragma}('{table}') ORDER BY name"),
        ))
        .await
        .unwrap();
    rows.iter().map(|row| row.try_get("", "name").unwrap()).collect()
}

#[tokio::test]
async fn the_lifecycle_migration_adds_its_columns_and_indexes_and_takes_them_back() {
    let (db, _folder) = empty_file().await;
    views::migrate(&db).await.unwrap();
    let columns = names_of(&db, "table_info", "orders").await;
    for column in ["payment_reference", "settled_at", "closed_at", "expires_at", "refusal"] {
        assert!(columns.iter().any(|c| c == column), "{column} in {columns:?}");
    }
    let indexes = names_of(&db, "index_list", "orders").await;
    for index in [
        "orders_newest_first",
        "orders_by_status_newest_first",
        "orders_by_payment_status_newest_first",
    ] {
        assert!(indexes.iter().any(|i| i == index), "{index} in {indexes:?}");
    }
    // Back to before the lifecycle migration (and those after it).
    Migrator::down(&db, Some((names().len() - lifecycle()) as u32))
        .await
        .unwrap();
    assert_eq!(names_of(&db, "table_info", "orders").await.len(), columns.len() - 5);
    assert!(
        !names_of(&db, "index_list", "orders")
            .await
            .iter()
            .any(|i| i.contains("newest_first") && i != "orders_by_customer_newest_first")
    );
    views::migrate(&db).await.unwrap();
    assert_eq!(names_of(&db, "table_info", "orders").await, columns);
}

#[tokio::test]
async fn orders_cancelled_before_the_lifecycle_migration_show_their_unpaid_payment_cancelled() {
    let (db, _folder) = empty_file().await;
    Migrator::up(&db, Some(lifecycle() as u32)).await.unwrap();
    let insert = |id: u8, status: &str, payment: &str| {
        format!(
            "INSERT INTO orders (order_id, customer_id, status, payment_status, customer_phone, address, city, \
             state, country, postal_code, placed_at, updated_at) VALUES ('00000000-0000-0000-0000-00000000000{id}', \
             '00000000-0000-0000-0000-0000000000aa', '{status}', '{payment}', '0812345678', '1 Main St', 'Bangkok', \
             'Bangkok', 'Thailand', '10110', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        )
    };
    for sql in [
        insert(1, "cancelled", "refunded"),
        insert(2, "confirmed", "arranged"),
        insert(3, "rejected", "void"),
    ] {
        db.execute_unprepared(&sql).await.unwrap();
    }
    views::migrate(&db).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT status, payment_status FROM orders ORDER BY order_id",
        ))
        .await
        .unwrap();
    let statuses: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "status").unwrap(),
                row.try_get("", "payment_status").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("cancelled", "cancelled"),
            ("confirmed", "arranged"),
            ("rejected", "void")
        ]
        .map(|(s, p)| (s.to_owned(), p.to_owned()))
    );
}

/// How many migrations come before the order lifecycle's.
fn lifecycle() -> usize {
    names()
        .iter()
        .position(|name| name == "m20261126_000006_order_lifecycle")
        .expect("the lifecycle migration")
}
