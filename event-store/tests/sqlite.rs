//! What only the embedded store promises: durability across reopening,
//! prompt in-process wake-ups, polling for other processes' writes, group
//! commit under concurrency, and typed errors for corrupt rows.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::sqlite::{SqliteEventStore, SqliteOptions};
use event_store::{EventStore, ExpectedRevision, StoreError, StreamFilter, StreamName};
use support::{assert_strictly_increasing, event, events, ids, next_event};

fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

fn open(folder: &tempfile::TempDir, poll_interval: Duration) -> SqliteEventStore {
    let options = SqliteOptions {
        poll_interval,
        ..SqliteOptions::default()
    };
    SqliteEventStore::open_with(folder.path().join("events.db"), options).unwrap()
}

#[tokio::test]
async fn an_empty_store_has_no_head() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    assert_eq!(store.head().await.unwrap(), None);
    assert!(store.read_all(None, 10, &StreamFilter::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn events_survive_reopening_and_positions_keep_growing() {
    let folder = tempfile::tempdir().unwrap();
    let first = {
        let store = open(&folder, Duration::from_secs(1));
        store
            .append(&stream("order-1"), ExpectedRevision::NoStream, events("Thing", 3))
            .await
            .unwrap()
    };
    let store = open(&folder, Duration::from_secs(1));
    assert_eq!(store.read_stream(&stream("order-1"), 0, 10).await.unwrap().len(), 3);
    let second = store
        .append(&stream("order-1"), ExpectedRevision::Exact(2), vec![event("Thing", 3)])
        .await
        .unwrap();
    assert!(second.position > first.position);
    assert_eq!(second.revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_is_woken_by_a_commit_in_this_process_without_polling() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(3600));
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    // Let the subscription reach its wait before the append.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let sent = event("Thing", 0);
    store
        .append(&stream("order-1"), ExpectedRevision::Any, vec![sent.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut subscription).await.id, sent.id);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "woken after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_writes_of_another_process_by_polling() {
    let folder = tempfile::tempdir().unwrap();
    let reader = open(&folder, Duration::from_millis(50));
    // A second store on the same file has its own writer and notifications,
    // as another process would.
    let other_process = open(&folder, Duration::from_millis(50));
    let mut subscription = reader.subscribe_all(None, StreamFilter::all());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sent = event("Thing", 0);
    other_process
        .append(&stream("order-1"), ExpectedRevision::Any, vec![sent.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut subscription).await.id, sent.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_file_keep_one_gapless_order() {
    let folder = tempfile::tempdir().unwrap();
    let stores = [
        open(&folder, Duration::from_millis(50)),
        open(&folder, Duration::from_millis(50)),
    ];
    let tasks = stores.iter().enumerate().map(|(writer, store)| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..50 {
                store
                    .append(
                        &stream(&format!("w{writer}-{n}")),
                        ExpectedRevision::NoStream,
                        vec![event("Thing", n)],
                    )
                    .await
                    .unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let all = stores[0].read_all(None, 1000, &StreamFilter::all()).await.unwrap();
    assert_eq!(all.len(), 100);
    assert_strictly_increasing(&all);
    let positions: Vec<u64> = all.iter().map(|e| e.position.commit).collect();
    assert_eq!(positions, (1..=100).collect::<Vec<_>>(), "no gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_committed_in_groups_with_distinct_positions() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&folder, Duration::from_secs(1)));
    let tasks = (0..64).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .append(
                    &stream(&format!("order-{n}")),
                    ExpectedRevision::NoStream,
                    vec![event("Placed", n)],
                )
                .await
                .unwrap()
        })
    });
    let mut positions: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap().position)
        .collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 64);
    let all = store.read_all(None, 1000, &StreamFilter::all()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), positions);
}

#[tokio::test]
async fn a_conflict_in_a_group_fails_alone() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&folder, Duration::from_secs(1)));
    store
        .append(&stream("taken-1"), ExpectedRevision::NoStream, vec![event("Thing", 0)])
        .await
        .unwrap();
    let conflicting = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .append(&stream("taken-1"), ExpectedRevision::NoStream, vec![event("Thing", 1)])
                .await
        })
    };
    let fine = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .append(&stream("free-1"), ExpectedRevision::NoStream, vec![event("Thing", 2)])
                .await
        })
    };
    assert!(matches!(
        conflicting.await.unwrap(),
        Err(StoreError::WrongExpectedRevision { actual: Some(0), .. })
    ));
    assert!(fine.await.unwrap().is_ok());
    assert_eq!(store.read_stream(&stream("taken-1"), 0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_event_id_reused_elsewhere_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    let batch = events("Thing", 2);
    store
        .append(&stream("order-1"), ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    let in_another_stream = store
        .append(&stream("order-2"), ExpectedRevision::NoStream, vec![batch[0].clone()])
        .await;
    assert!(matches!(in_another_stream, Err(StoreError::DuplicateEventId { id }) if id == batch[0].id));
    let half_repeated = store
        .append(
            &stream("order-1"),
            ExpectedRevision::Any,
            vec![batch[0].clone(), event("Thing", 9)],
        )
        .await;
    assert!(matches!(half_repeated, Err(StoreError::DuplicateEventId { .. })));
    let second_reused = store
        .append(
            &stream("order-1"),
            ExpectedRevision::Any,
            vec![event("Thing", 7), batch[1].clone()],
        )
        .await;
    assert!(matches!(second_reused, Err(StoreError::DuplicateEventId { id }) if id == batch[1].id));
    assert_eq!(
        ids(&store.read_stream(&stream("order-1"), 0, 10).await.unwrap()),
        ids_of(&batch)
    );
    assert!(store.read_stream(&stream("order-2"), 0, 10).await.unwrap().is_empty());
}

fn ids_of(events: &[event_store::NewEvent]) -> Vec<uuid::Uuid> {
    events.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn corrupt_rows_give_typed_errors_not_panics() {
    let corruptions = [
        (
            "event id of the wrong length",
            "UPDATE events SET event_id = x'0102' WHERE position = 2",
        ),
        (
            "metadata that is not JSON",
            "UPDATE events SET metadata = x'7b6e6f' WHERE position = 2",
        ),
        (
            "a stream that is not text",
            "UPDATE events SET stream = x'ff' WHERE position = 2",
        ),
        (
            "a timestamp out of range",
            "UPDATE events SET recorded_at = 9223372036854775807 WHERE position = 2",
        ),
        (
            "a negative revision",
            "UPDATE events SET revision = -5 WHERE position = 2",
        ),
    ];
    for (case, corruption) in corruptions {
        let folder = tempfile::tempdir().unwrap();
        let store = open(&folder, Duration::from_secs(1));
        store
            .append(&stream("order-1"), ExpectedRevision::NoStream, events("Thing", 3))
            .await
            .unwrap();
        rusqlite::Connection::open(folder.path().join("events.db"))
            .unwrap()
            .execute_batch(corruption)
            .unwrap();
        let before = store.read_all(None, 10, &StreamFilter::all()).await.unwrap();
        assert_eq!(before.len(), 1, "{case}: the events before the damage are read");
        let read = store.read_all(Some(before[0].position), 10, &StreamFilter::all()).await;
        assert!(
            matches!(&read, Err(StoreError::Corrupt { position, .. }) if position.commit == 2),
            "{case}: {read:?}"
        );
        let mut subscription = store.subscribe_all(None, StreamFilter::all());
        assert!(
            subscription.next().await.unwrap().is_ok(),
            "{case}: the first event is fine"
        );
        assert!(
            matches!(subscription.next().await, Some(Err(StoreError::Corrupt { .. }))),
            "{case}: the subscription reports the corrupt row"
        );
        assert!(subscription.next().await.is_none(), "{case}: and then ends");
    }
}

#[tokio::test]
async fn a_store_file_from_a_newer_build_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    assert!(matches!(
        SqliteEventStore::open(&path),
        Err(StoreError::Incompatible { .. })
    ));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just some text that is long enough to look like a header",
    )
    .unwrap();
    assert!(matches!(
        SqliteEventStore::open(&path),
        Err(StoreError::Unavailable { .. })
    ));
}
