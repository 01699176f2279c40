use async_trait::async_trait;

use crate::{
    AppendOutcome, ExpectedRevision, NewEvent, Position, RecordedEvent, StoreError, StreamFilter, StreamName,
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
    /// A stream that does not exist reads as empty.
    async fn read_stream(&self, stream: &StreamName, from: u64, limit: usize)
    -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last event of `stream`, `None` when the stream does not exist.
    /// Enough to read a checkpoint kept as a stream of snapshots.
    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the global log strictly after `after` (from
    /// the start when `None`) whose streams pass `filter`, in commit order.
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last event in the global log, `None` when empty.
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// A catch-up subscription: the events after `after` that pass `filter`,
    /// the stored ones first, then new ones as they are committed, in commit
    /// order, each once. Resuming from the last position seen continues
    /// without a gap or a duplicate.
    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription;
}

/// Reads a whole stream, page by page.
pub async fn read_whole_stream(store: &dyn EventStore, stream: &StreamName) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 1000;
    let mut events = Vec::new();
    loop {
        let page = store.read_stream(stream, events.len() as u64, PAGE).await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}
