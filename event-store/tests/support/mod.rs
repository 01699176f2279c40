//! What the event store tests share: a store per test, and event builders.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{
    EventMetadata, EventStore, NewEvent, RecordedEvent, StoreError, StreamFilter, StreamName, Subscription,
};
use uuid::Uuid;

/// A store and a prefix no other test uses, so tests can share one
/// EventStoreDB server and still see only their own streams.
pub struct Context {
    pub store: Arc<dyn EventStore>,
    pub prefix: String,
    _folder: Option<tempfile::TempDir>,
}

impl Context {
    pub fn stream(&self, name: &str) -> StreamName {
        StreamName::new(format!("{}{name}", self.prefix)).expect("test stream names are valid")
    }

    /// Only this test's streams.
    pub fn filter(&self) -> StreamFilter {
        StreamFilter::prefixes([self.prefix.clone()])
    }
}

fn unique_prefix() -> String {
    format!("t{}_", Uuid::new_v4().simple())
}

pub async fn sqlite() -> Context {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = event_store::sqlite::SqliteEventStore::open(folder.path().join("events.db")).expect("store opens");
    Context {
        store: Arc::new(store),
        prefix: unique_prefix(),
        _folder: Some(folder),
    }
}

pub async fn esdb() -> Context {
    let url = std::env::var("TEST_ESDB_URL").expect("TEST_ESDB_URL names the EventStoreDB server to test against");
    Context {
        store: event_store::connect(&url).expect("EventStoreDB connects"),
        prefix: unique_prefix(),
        _folder: None,
    }
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Uuid::new_v4(),
        // Every adapter keeps the trace id beside the correlation id.
        trace_id: Some(
            Uuid::new_v4()
                .simple()
                .to_string()
                .parse()
                .expect("a UUID's hex is a trace id"),
        ),
        causation_id: Some(Uuid::new_v4()),
        user_id: Some(Uuid::new_v4()),
        schema_version: 1,
    }
}

/// An event of type `kind` whose data is `{"n": n}`.
pub fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: kind.to_owned(),
        data: serde_json::to_vec(&serde_json::json!({ "n": n })).expect("json"),
        metadata: metadata(),
    }
}

pub fn events(kind: &str, count: u64) -> Vec<NewEvent> {
    (0..count).map(|n| event(kind, n)).collect()
}

pub fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

/// How long a test waits for something that should happen: long enough for
/// a loaded 2-core machine, so that running out of it means a bug.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The next event of a subscription, failing the test after [`PATIENCE`].
pub async fn next_event(subscription: &mut Subscription) -> RecordedEvent {
    match tokio::time::timeout(PATIENCE, subscription.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("subscription failed: {error}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Fails unless the subscription has nothing to give for half a second:
/// it has read what is stored and waits for more. (A bounded wait only
/// proves that nothing comes.)
pub async fn assert_parked(subscription: &mut Subscription, which: &str) {
    let waited = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
    assert!(waited.is_err(), "{which}: expected to wait, got {waited:?}");
}

/// Waits until `condition` holds, failing the test after [`PATIENCE`] with
/// `what` did not happen.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn assert_strictly_increasing(events: &[RecordedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions must strictly increase: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
}

pub fn is_wrong_revision(result: &Result<event_store::AppendOutcome, StoreError>) -> bool {
    matches!(result, Err(StoreError::WrongExpectedRevision { .. }))
}
