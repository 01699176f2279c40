//! Taking a subscription's events in batches
//! ([`event_store::Subscription::next_batch`]) on a real embedded store.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use event_store::sqlite::SqliteEventStore;
use event_store::{EventStore, ExpectedRevision, RecordedEvent, StoreError, StreamFilter, StreamName, Subscription};
use support::{PATIENCE, events, ids};

fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

fn open(folder: &tempfile::TempDir) -> SqliteEventStore {
    SqliteEventStore::open(folder.path().join("events.db")).unwrap()
}

/// The next batch, failing the test after [`PATIENCE`] or on an error.
async fn batch(subscription: &mut Subscription, max: usize) -> Vec<RecordedEvent> {
    match tokio::time::timeout(PATIENCE, subscription.next_batch(max)).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(error))) => panic!("subscription failed: {error}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no batch within {PATIENCE:?}"),
    }
}

#[tokio::test]
async fn a_batch_stops_at_its_maximum_and_the_next_goes_on_from_there() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder);
    store
        .append(&stream("thing-1"), ExpectedRevision::NoStream, events("Thing", 10))
        .await
        .unwrap();
    let stored = store.read_all(None, 10, &StreamFilter::all()).await.unwrap();
    let mut subscription = store.subscribe_all(None, StreamFilter::all());

    let mut seen = Vec::new();
    for _ in 0..3 {
        let batch = batch(&mut subscription, 4).await;
        assert!(!batch.is_empty() && batch.len() <= 4, "a batch of {}", batch.len());
        seen.extend(batch);
    }
    while seen.len() < stored.len() {
        seen.extend(batch(&mut subscription, 4).await);
    }
    assert_eq!(ids(&seen), ids(&stored), "every event once, in order");
    support::assert_parked(&mut subscription, "after the last stored event").await;
}

#[tokio::test]
async fn a_full_batch_is_taken_when_that_many_are_ready() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder);
    store
        .append(&stream("thing-1"), ExpectedRevision::NoStream, events("Thing", 10))
        .await
        .unwrap();
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    // The embedded store reads a page of stored events at once, so after
    // the first the other nine are ready.
    assert_eq!(batch(&mut subscription, 4).await.len(), 4);
    assert_eq!(batch(&mut subscription, 4).await.len(), 4);
    assert_eq!(batch(&mut subscription, 4).await.len(), 2);
}

#[tokio::test]
async fn a_batch_does_not_wait_for_more_once_something_is_ready() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder);
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    let waiting = tokio::spawn(async move {
        let first = batch(&mut subscription, 100).await;
        (first, subscription)
    });
    store
        .append(&stream("thing-1"), ExpectedRevision::NoStream, events("Thing", 3))
        .await
        .unwrap();
    // Three events in the log and room for a hundred: the batch comes back
    // with what there is instead of waiting for the rest.
    let (first, mut subscription) = waiting.await.unwrap();
    let mut seen = first;
    while seen.len() < 3 {
        seen.extend(batch(&mut subscription, 100).await);
    }
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn an_error_comes_after_the_events_before_it_and_ends_the_subscription() {
    for next_call in ["next_batch", "next"] {
        let folder = tempfile::tempdir().unwrap();
        let store = open(&folder);
        store
            .append(&stream("thing-1"), ExpectedRevision::NoStream, events("Thing", 3))
            .await
            .unwrap();
        rusqlite::Connection::open(folder.path().join("events.db"))
            .unwrap()
            .execute_batch("UPDATE events SET metadata = x'7b6e6f' WHERE position = 2")
            .unwrap();
        let mut subscription = store.subscribe_all(None, StreamFilter::all());

        let before = batch(&mut subscription, 10).await;
        assert_eq!(before.len(), 1, "{next_call}: the event before the damage is delivered");
        assert_eq!(before[0].position.commit, 1);
        let error = match next_call {
            "next_batch" => subscription.next_batch(10).await.map(|batch| batch.map(|_| ())),
            _ => subscription.next().await.map(|event| event.map(|_| ())),
        };
        assert!(
            matches!(error, Some(Err(StoreError::Corrupt { ref position, .. })) if position.commit == 2),
            "{next_call}: then the error: {error:?}"
        );
        assert!(
            subscription.next_batch(10).await.is_none(),
            "{next_call}: and then it ends"
        );
    }
}

#[tokio::test]
async fn an_error_first_is_answered_at_once() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder);
    store
        .append(&stream("thing-1"), ExpectedRevision::NoStream, events("Thing", 2))
        .await
        .unwrap();
    rusqlite::Connection::open(folder.path().join("events.db"))
        .unwrap()
        .execute_batch("UPDATE events SET metadata = x'7b6e6f' WHERE position = 1")
        .unwrap();
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    let answer = subscription.next_batch(10).await;
    assert!(
        matches!(answer, Some(Err(StoreError::Corrupt { .. }))),
        "{:?}",
        answer.map(|batch| batch.map(|events| events.len()))
    );
    assert!(subscription.next_batch(10).await.is_none());
}
