//! An event store that fails where and when a test says, in front of a
//! real one: tests inject faults here instead of giving production code
//! hooks of its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use event_store::{
    AppendOutcome, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, Snapshot, StoreError, StreamFilter,
    StreamName, Subscription,
};

/// What the store says while it is down ([`FaultyStore::go_down`]).
pub const OUTAGE: &str = "connection refused by the test's outage switch";

/// Passes everything to the store inside, except the faults switched on:
///
/// - [`fail_appends_to`](Self::fail_appends_to) a stream: every append to
///   it fails, as if the process died just before writing there, while
///   appends to other streams still work, as commands under way may finish
///   in a real crash. Which of them happen is then up to the test, not to a
///   race.
/// - [`go_down`](Self::go_down) until [`come_back`](Self::come_back): every
///   read and append fails as an unreachable store's do. Subscriptions
///   already open carry on.
/// - [`hold_appends_to`](Self::hold_appends_to) a stream: appends to it
///   wait (after their command decided) until
///   [`release_held`](Self::release_held), so two commands can be made to
///   decide on the same revision and then race for it.
/// - [`deliver_again_after`](Self::deliver_again_after) a position:
///   subscriptions start there at the latest, as one that reconnects may
///   deliver again events its reader has seen.
///
/// It also records where each subscription started
/// ([`subscriptions_started`](Self::subscriptions_started)) and which
/// streams were read ([`streams_read`](Self::streams_read)): what a command
/// executed on an aggregate loads, even when it decides nothing.
pub struct FaultyStore {
    inner: Arc<dyn EventStore>,
    failing_stream: Mutex<Option<StreamName>>,
    failed_appends: AtomicUsize,
    down: AtomicBool,
    deliver_again_after: Mutex<Option<Option<Position>>>,
    subscriptions_started: Mutex<Vec<Option<Position>>>,
    streams_read: Mutex<Vec<String>>,
    holding: Mutex<Option<StreamName>>,
    held_appends: AtomicUsize,
    /// `true` once held appends may go on.
    released: tokio::sync::watch::Sender<bool>,
}

impl FaultyStore {
    /// In front of `inner`, with no fault switched on.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            failing_stream: Mutex::new(None),
            failed_appends: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            deliver_again_after: Mutex::new(None),
            subscriptions_started: Mutex::new(Vec::new()),
            streams_read: Mutex::new(Vec::new()),
            holding: Mutex::new(None),
            held_appends: AtomicUsize::new(0),
            released: tokio::sync::watch::Sender::new(false),
        }
    }

    /// From now on appends to `stream` wait until [`Self::release_held`].
    pub fn hold_appends_to(&self, stream: StreamName) {
        self.released.send_replace(false);
        *self.holding.lock().unwrap() = Some(stream);
    }

    /// How many appends [`Self::hold_appends_to`] has held so far.
    pub fn held_appends(&self) -> usize {
        self.held_appends.load(Ordering::SeqCst)
    }

    /// Lets the held appends go on, all at once, and holds no more.
    pub fn release_held(&self) {
        *self.holding.lock().unwrap() = None;
        self.released.send_replace(true);
    }

    /// From now on every append to `stream` fails.
    pub fn fail_appends_to(&self, stream: StreamName) {
        *self.failing_stream.lock().unwrap() = Some(stream);
    }

    /// How many appends failed because of [`Self::fail_appends_to`].
    pub fn failed_appends(&self) -> usize {
        self.failed_appends.load(Ordering::SeqCst)
    }

    /// From now on every read and append fails, saying [`OUTAGE`].
    pub fn go_down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    /// Ends [`Self::go_down`].
    pub fn come_back(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// From now on subscriptions start after `position` at the latest
    /// (`None`: from the start of the log).
    pub fn deliver_again_after(&self, position: Option<Position>) {
        *self.deliver_again_after.lock().unwrap() = Some(position);
    }

    /// Where each subscription asked to start, in order.
    pub fn subscriptions_started(&self) -> Vec<Option<Position>> {
        self.subscriptions_started.lock().unwrap().clone()
    }

    /// The streams read one by one (their events, last event or snapshot),
    /// in order.
    pub fn streams_read(&self) -> Vec<String> {
        self.streams_read.lock().unwrap().clone()
    }

    fn note_read(&self, stream: &StreamName) {
        self.streams_read.lock().unwrap().push(stream.to_string());
    }

    fn check_up(&self, context: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                context,
                source: Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, OUTAGE)),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.check_up("appending")?;
        if self.failing_stream.lock().unwrap().as_ref() == Some(stream) {
            self.failed_appends.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable {
                context: "appending",
                source: format!("the test made the append to {stream} fail").into(),
            });
        }
        if self.holding.lock().unwrap().as_ref() == Some(stream) {
            let mut released = self.released.subscribe();
            self.held_appends.fetch_add(1, Ordering::SeqCst);
            let _ = released.wait_for(|released| *released).await;
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_up("reading a stream")?;
        self.note_read(stream);
        self.inner.read_stream(stream, from, limit).await
    }

    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        self.check_up("reading a stream")?;
        self.note_read(stream);
        self.inner.read_last(stream).await
    }

    async fn last_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.check_up("reading a stream")?;
        self.note_read(stream);
        self.inner.last_revision(stream).await
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_up("reading the log")?;
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.check_up("reading the head")?;
        self.inner.head().await
    }

    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription {
        self.subscriptions_started.lock().unwrap().push(after);
        let start = match *self.deliver_again_after.lock().unwrap() {
            Some(again) => again.min(after),
            None => after,
        };
        self.inner.subscribe_all(start, filter)
    }

    async fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StoreError> {
        self.check_up("reading a snapshot")?;
        self.note_read(stream);
        self.inner.read_snapshot(stream).await
    }

    async fn write_snapshot(&self, stream: &StreamName, snapshot: Snapshot) -> Result<(), StoreError> {
        self.check_up("writing a snapshot")?;
        self.inner.write_snapshot(stream, snapshot).await
    }

    async fn set_max_count(&self, stream: &StreamName, max_count: u64) -> Result<(), StoreError> {
        self.check_up("setting a max count")?;
        self.inner.set_max_count(stream, max_count).await
    }
}
