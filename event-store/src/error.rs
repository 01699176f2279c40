use crate::{ExpectedRevision, Position};

/// Everything that can go wrong with the event store, typed so that callers
/// can tell a conflict from bad input from an outage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid stream name {name:?}: {reason}")]
    InvalidStreamName { name: String, reason: &'static str },
    #[error("invalid event: {reason}")]
    InvalidEvent { reason: String },
    #[error("the append is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// Optimistic concurrency: the stream is not where the writer expected.
    /// `actual` is the stream's last revision, `None` when it does not exist.
    #[error("stream {stream} expected at {expected:?} but is at {actual:?}")]
    WrongExpectedRevision {
        stream: String,
        expected: ExpectedRevision,
        actual: Option<u64>,
    },
    /// The event id is stored already, but not as part of this same append.
    #[error("event id {id} is already stored elsewhere")]
    DuplicateEventId { id: uuid::Uuid },
    #[error("stored event at {position} is corrupt: {detail}")]
    Corrupt { position: Position, detail: String },
    #[error("event store unavailable while {context}: {source}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unsupported event store URL {url:?}: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("the event store file is not usable by this build: {reason}")]
    Incompatible { reason: String },
    #[error("the event store is shut down")]
    Closed,
}

impl StoreError {
    pub(crate) fn unavailable(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            context,
            source: Box::new(source),
        }
    }
}
