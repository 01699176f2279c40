//! The embedded event store: one SQLite file in WAL mode.
//!
//! Appends go to a single writer thread that commits concurrent appends
//! together (group commit): one transaction, and so one fsync, for every
//! append waiting when the previous commit finished, each inside its own
//! savepoint so that a conflicting append fails alone. Positions are the
//! table's row ids, handed out by that one writer inside its transaction, so
//! they strictly increase in commit order and readers never see a gap.
//! Subscribers in this process are handed each commit's events
//! ([`tail`]); writes by another process are seen by polling.

mod limits;
mod reader;
mod rows;
mod schema;
mod snapshots;
mod subscription;
mod tail;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::validate_append;
use crate::snapshot::{validate_max_count, validate_snapshot};
use crate::{
    AppendOutcome, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, Snapshot, StoreError, StreamFilter,
    StreamName, Subscription,
};

pub use schema::Durability;
pub use tail::CAPACITY as TAIL_CAPACITY;

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How often an idle subscriber looks for events written by another
    /// process. Events of this process wake it at once.
    pub poll_interval: Duration,
    /// The most appends committed in one transaction.
    pub max_group: usize,
    /// The reader threads, each with a connection of its own: the most
    /// reads run at once.
    pub max_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            max_group: 512,
            max_readers: reader::max_readers(),
        }
    }
}

/// The embedded adapter of [`EventStore`].
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    appends: mpsc::Sender<writer::Request>,
    readers: reader::ReaderPool,
    /// The last committed position, published by the writer after each commit.
    head: Arc<watch::Sender<Option<Position>>>,
    /// Each commit's events, published by the writer for subscribers.
    tail: tail::Sender,
    counters: Arc<writer::Counters>,
    durability: Durability,
    options: SqliteOptions,
}

/// What the writer has done since the store was opened, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Appends waiting for the writer to take them up: the backlog.
    pub queued_appends: usize,
    /// Appends the writer has taken up, whatever their outcome.
    pub taken_appends: u64,
    /// Write transactions committed; `taken_appends / commits` is about the
    /// mean number of appends sharing one commit (and one fsync).
    pub commits: u64,
}

impl SqliteEventStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::unavailable("creating the store's folder", e))?;
        }
        let connection = schema::open_connection(&path)?;
        schema::migrate(&connection)?;
        let durability = schema::durability(&connection)?;
        let head = Arc::new(watch::Sender::new(rows::head(&connection)?));
        let counters = Arc::new(writer::Counters::default());
        let tail = tail::channel();
        let published = writer::Published {
            head: Arc::clone(&head),
            tail: tail.clone(),
        };
        let appends = writer::spawn(connection, published, Arc::clone(&counters), options.max_group)?;
        Ok(Self {
            inner: Arc::new(Inner {
                readers: reader::ReaderPool::new(path.clone(), options.max_readers)?,
                path,
                appends,
                head,
                tail,
                counters,
                durability,
                options,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability settings of the connection that commits appends, as
    /// SQLite reported them once they were set.
    pub fn durability(&self) -> &Durability {
        &self.inner.durability
    }

    pub fn writer_stats(&self) -> WriterStats {
        let appends = &self.inner.appends;
        WriterStats {
            queued_appends: appends.max_capacity() - appends.capacity(),
            taken_appends: self.inner.counters.taken_appends.load(Ordering::Relaxed),
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
        }
    }

    /// Reads run on the store's read connections since it was opened
    /// (stream reads, global reads, subscriptions' pages, the head,
    /// snapshots): each is a hand-off to another thread, so a caller that
    /// is fast counts them.
    pub fn reads(&self) -> u64 {
        self.inner.readers.reads()
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        validate_append(&events)?;
        let (reply, outcome) = oneshot::channel();
        let request = writer::Request::Append(writer::AppendRequest {
            stream: stream.clone(),
            expected,
            events,
            reply,
        });
        self.inner.appends.send(request).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |connection| rows::read_stream(connection, &stream, from, limit))
            .await
    }

    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |connection| rows::read_last(connection, &stream))
            .await
    }

    async fn last_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |connection| rows::last_revision(connection, &stream))
            .await
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all(&self.inner, after, limit, filter.clone()).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.readers.run(rows::head).await
    }

    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription {
        subscription::subscribe(Arc::clone(&self.inner), after, filter)
    }

    async fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |connection| snapshots::read(connection, stream.as_str()))
            .await
    }

    async fn write_snapshot(&self, stream: &StreamName, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_snapshot(&snapshot)?;
        let stream = stream.clone();
        self.write_other(move |connection| snapshots::write(connection, stream.as_str(), &snapshot))
            .await
    }

    async fn set_max_count(&self, stream: &StreamName, max_count: u64) -> Result<(), StoreError> {
        validate_max_count(max_count)?;
        let stream = stream.clone();
        self.write_other(move |connection| limits::set_max_count(connection, stream.as_str(), max_count))
            .await
    }
}

impl SqliteEventStore {
    /// Runs `write` on the writer thread, in turn with the appends.
    async fn write_other(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        let request = writer::Request::Other(writer::OtherWrite {
            write: Box::new(write),
            reply,
        });
        self.inner.appends.send(request).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

async fn read_all(
    inner: &Inner,
    after: Option<Position>,
    limit: usize,
    filter: StreamFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    inner
        .readers
        .run(move |connection| rows::read_all(connection, after, limit, &filter))
        .await
}
