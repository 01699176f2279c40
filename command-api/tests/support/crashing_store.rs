//! An event store that dies where a test wants: crash tests run the saga on
//! it instead of giving the saga a crash hook of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use event_store::{
    AppendOutcome, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, StoreError, StreamFilter,
    StreamName, Subscription,
};

/// Passes everything to `inner`, except that every append to one chosen
/// stream fails, as if the process died just before writing there. The
/// saga then stops with the error without saving its progress, as a crashed
/// process would. Appends to other streams still work, so commands already
/// under way on them finish, as they may in a real crash; which of them
/// happen is then up to the test, not to a race.
///
/// It also records where each subscription started, so a test can see
/// where a restarted saga resumed.
pub struct CrashingStore {
    inner: Arc<dyn EventStore>,
    dies_before: Option<StreamName>,
    crashes: AtomicUsize,
    subscribed_after: Mutex<Vec<Option<Position>>>,
}

impl CrashingStore {
    /// A store that dies before its first append to `stream`.
    pub fn dying_before_appending_to(inner: Arc<dyn EventStore>, stream: StreamName) -> Self {
        Self {
            dies_before: Some(stream),
            ..Self::never_dying(inner)
        }
    }

    /// A store that only records where subscriptions start.
    pub fn never_dying(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            dies_before: None,
            crashes: AtomicUsize::new(0),
            subscribed_after: Mutex::new(Vec::new()),
        }
    }

    /// How many appends failed as the crash.
    pub fn crashes(&self) -> usize {
        self.crashes.load(Ordering::SeqCst)
    }

    /// Where each subscription started, in order.
    pub fn subscribed_after(&self) -> Vec<Option<Position>> {
        self.subscribed_after.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventStore for CrashingStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if self.dies_before.as_ref() == Some(stream) {
            self.crashes.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable {
                context: "appending in a crash test",
                source: format!("the process died before appending to {stream}").into(),
            });
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, limit).await
    }

    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.read_last(stream).await
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }

    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription {
        self.subscribed_after.lock().unwrap().push(after);
        self.inner.subscribe_all(after, filter)
    }
}
