//! The users projection's `revoked_tokens`, on SQLite and on Postgres: a
//! logout's revocation is kept while its token could be presented, and
//! forgotten once the log has moved an hour past the token's expiry,
//! whatever the batches (so a rebuild leaves the rows the live projection
//! left).

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::account::revocation::TokenEvent;
use domain::event::DomainEvent;
use domain::ids::UserId;
use event_store::{EventStore, ExpectedRevision, StreamName};
use sea_orm::{DatabaseConnection, EntityTrait};
use uuid::Uuid;
use views::tables::revoked_tokens;

/// The revocation of `token` at `at`, of a token expiring an hour later.
fn revoked(token: Uuid, at: DateTime<Utc>) -> TokenEvent {
    TokenEvent::Revoked {
        token_id: token,
        user_id: UserId::from_uuid(Uuid::from_u128(1)),
        expires_at: at + TimeDelta::hours(1),
        at,
    }
}

async fn append(store: &Arc<dyn EventStore>, event: &TokenEvent) {
    let TokenEvent::Revoked { token_id, .. } = event;
    let encoded = event.encode().unwrap();
    let new = test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data);
    let stream = StreamName::new(TokenEvent::stream_name(token_id)).unwrap();
    store
        .append(&stream, ExpectedRevision::NoStream, vec![new])
        .await
        .unwrap();
}

/// The tokens `revoked_tokens` holds after the users projection is rebuilt
/// from `store` in batches of `batch_size`.
async fn kept(store: &Arc<dyn EventStore>, url: &str, batch_size: usize) -> Vec<Uuid> {
    let db: DatabaseConnection = projectors::database::connect_and_migrate(url, 4).await.unwrap();
    let users = projectors::named(views::projections::USERS).unwrap();
    projectors::generations::rebuild::replay(store, &db, &users, batch_size)
        .await
        .unwrap();
    let mut kept: Vec<Uuid> = revoked_tokens::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.token_id)
        .collect();
    kept.sort();
    kept
}

async fn a_revocation_is_forgotten_an_hour_after_its_token_expired(urls: [String; 2]) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let (old, recent) = (Uuid::from_u128(10), Uuid::from_u128(20));
    append(&store, &revoked(old, start)).await;
    // Two hours and a second later: the old token expired an hour and a
    // second ago.
    append(&store, &revoked(recent, start + TimeDelta::seconds(2 * 3600 + 1))).await;
    let [one_by_one, all_at_once] = urls;
    assert_eq!(kept(&store, &one_by_one, 1).await, [recent]);
    assert_eq!(kept(&store, &all_at_once, 100).await, [recent]);
}

async fn a_revocation_is_kept_while_its_token_could_be_presented(urls: [String; 2]) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let (first, second) = (Uuid::from_u128(10), Uuid::from_u128(20));
    append(&store, &revoked(first, start)).await;
    append(&store, &revoked(second, start + TimeDelta::hours(2))).await;
    let [one_by_one, all_at_once] = urls;
    assert_eq!(kept(&store, &one_by_one, 1).await, [first, second]);
    assert_eq!(kept(&store, &all_at_once, 100).await, [first, second]);
}

mod on_sqlite {
    fn urls() -> ([String; 2], [tempfile::TempDir; 2]) {
        let (first, first_folder) = test_support::sqlite_views();
        let (second, second_folder) = test_support::sqlite_views();
        ([first, second], [first_folder, second_folder])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_is_forgotten_an_hour_after_its_token_expired() {
        let (urls, _keep) = urls();
        super::a_revocation_is_forgotten_an_hour_after_its_token_expired(urls).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_is_kept_while_its_token_could_be_presented() {
        let (urls, _keep) = urls();
        super::a_revocation_is_kept_while_its_token_could_be_presented(urls).await;
    }
}

mod on_postgres {
    async fn urls() -> [String; 2] {
        [
            test_support::postgres::fresh_database().await,
            test_support::postgres::fresh_database().await,
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_is_forgotten_an_hour_after_its_token_expired() {
        super::a_revocation_is_forgotten_an_hour_after_its_token_expired(urls().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_is_kept_while_its_token_could_be_presented() {
        super::a_revocation_is_kept_while_its_token_could_be_presented(urls().await).await;
    }
}
