use async_trait::async_trait;

use crate::{
    AppendOutcome, ExpectedRevision, NewEvent, Position, RecordedEvent, Snapshot, StoreError, StreamFilter, StreamName,
    Subscription,
};

/// The event store port. Adapters: [`crate::sqlite::SqliteEventStore`] and
/// [`crate::esdb::EsdbEventStore`]; [`crate::connect`] picks one by URL.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if the stream meets
    /// `expected`; otherwise fails with
    /// [`StoreError::WrongExpectedRevision`] and stores nothing. Appending
    /// event ids that were already appended to this stream, as the same
    /// append, stores nothing and answers the original outcome.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` events of `stream` from revision `from` on, in order.
    /// A stream that does not exist reads as empty; one kept to a max count
    /// ([`EventStore::set_max_count`]) starts at its first event kept.
    ///
    /// An event's `position` is its global position when the store reports
    /// it on stream reads; older EventStoreDB servers do not (they send
    /// `u64::MAX`), and the event then has no [`RecordedEvent::global_position`]. Positions
    /// for clients come from appends and from the global log, never from
    /// such an event.
    async fn read_stream(&self, stream: &StreamName, from: u64, limit: usize)
    -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last event of `stream`, `None` when the stream does not exist.
    /// Enough to read a checkpoint kept as a stream of snapshots.
    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError>;

    /// The revision of `stream`'s last event, `None` when the stream does
    /// not exist: what [`EventStore::read_last`] says of it, without
    /// reading the event. An adapter that can find the revision without
    /// reading the event overrides it (the embedded store reads its index
    /// alone); by default it reads the last event.
    async fn last_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        Ok(self.read_last(stream).await?.map(|event| event.revision))
    }

    /// Up to `limit` events of the global log strictly after `after` (from
    /// the start when `None`) whose streams pass `filter`, in commit order.
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last event in the global log that a subscriber
    /// can see (system events, `$`-typed or in `$` streams, are not), `None`
    /// when there is none. A subscriber that has handled this position has
    /// caught up.
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// The latest snapshot kept for `stream`, `None` when there is none.
    async fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StoreError>;

    /// Keeps `snapshot` as `stream`'s latest, in place of the one before
    /// (the embedded store keeps the one of the highest revision). Data must
    /// be JSON within [`crate::MAX_APPEND_BYTES`]. On EventStoreDB it is an
    /// event of the stream `snapshot-{stream}`, kept to its last one with
    /// `$maxCount`, which global readers see (and filter out by prefix).
    async fn write_snapshot(&self, stream: &StreamName, snapshot: Snapshot) -> Result<(), StoreError>;

    /// From now on `stream` keeps only its last `max_count` events (at least
    /// one): the older ones are gone for reads at once, and the store frees
    /// them (the embedded store deletes them at once and after each append;
    /// EventStoreDB sets `$maxCount` and its scavenge frees them).
    /// Revisions go on counting from where they were.
    async fn set_max_count(&self, stream: &StreamName, max_count: u64) -> Result<(), StoreError>;

    /// A catch-up subscription: the events after `after` that pass `filter`,
    /// the stored ones first, then new ones as they are committed, in commit
    /// order, each once. Resuming from the last position seen continues
    /// without a gap or a duplicate.
    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription;
}

/// Reads a whole stream, page by page (from its first event kept).
pub async fn read_whole_stream(store: &dyn EventStore, stream: &StreamName) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 1000;
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = events.last().map_or(0, |last| last.revision + 1);
        let page = store.read_stream(stream, from, PAGE).await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}
