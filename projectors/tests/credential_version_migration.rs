//! The migration that adds `users.credential_version` makes the users
//! projection replay, so rows written before it get their accounts' real
//! versions (which tokens are checked against), on SQLite and on Postgres.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use test_support::App;
use views::Migrator;

const MIGRATION: &str = "m20261126_000003_credential_versions";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let (url, _keep) = test_support::sqlite_views();
    existing_rows_get_their_versions(views::connect(&url, 2).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let url = test_support::postgres::fresh_database().await;
    existing_rows_get_their_versions(views::connect(&url, 2).await.unwrap()).await;
}

/// The admin's password changed once (version 2: registered, then reset
/// by a restart with another `ADMIN_PASSWORD`); alice only registered (1).
async fn existing_rows_get_their_versions(db: DatabaseConnection) {
    let folder = Arc::new(tempfile::tempdir().unwrap());
    let app = App::start_on(Arc::clone(&folder), App::config()).await;
    app.register("alice").await;
    app.stop().await;
    let mut config = App::config();
    config.admin = Some((App::ADMIN.0.to_owned(), "another-admin-password".to_owned()));
    let app = App::start_on(folder, config).await;

    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == MIGRATION)
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(before).unwrap())).await.unwrap();
    insert_users_as_projected_before(&db).await;
    views::checkpoint::advance(&db, views::projections::USERS, None, app.head().await)
        .await
        .unwrap();
    views::migrate(&db).await.unwrap();
    assert_eq!(versions(&db).await, [("admin".to_owned(), 0), ("alice".to_owned(), 0)]);

    let _projections =
        projectors::supervisor::start(Arc::clone(&app.store), db.clone(), Default::default(), app.shutdown());
    test_support::wait_for("the users projection to fill the versions", || async {
        let versions = versions(&db).await;
        if versions == [("admin".to_owned(), 2), ("alice".to_owned(), 1)] {
            Ok(())
        } else {
            Err(format!("{versions:?}"))
        }
    })
    .await;
}

async fn versions(db: &DatabaseConnection) -> Vec<(String, i64)> {
    let select = "SELECT username, credential_version FROM users ORDER BY username";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), select))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "username").unwrap(),
                row.try_get("", "credential_version").unwrap(),
            )
        })
        .collect()
}

/// The two users as the projection wrote them before the column existed.
async fn insert_users_as_projected_before(db: &DatabaseConnection) {
    let columns = ["user_id", "username", "display_name", "role", "registered_at"];
    let mut insert = Query::insert();
    insert.into_table(Alias::new("users")).columns(columns.map(Alias::new));
    for (username, role) in [("admin", "admin"), ("alice", "customer")] {
        let user_id = domain::ids::UserId::for_username(&domain::account::Username::parse(username).unwrap());
        let values: [sea_orm::Value; 5] = [
            user_id.as_uuid().into(),
            username.into(),
            username.into(),
            role.into(),
            chrono::Utc::now().into(),
        ];
        insert.values_panic(values.map(Into::into));
    }
    db.execute(&insert).await.unwrap();
}
