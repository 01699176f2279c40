//! Loading aggregates, deciding, and appending: the one way every command
//! reaches the event store.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use domain::decider::Decider;
use domain::event::{DecodeError, DomainEvent, EncodeError};
use domain::validation::InvalidField;
use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, StoreError, StreamName};
use uuid::Uuid;

/// How often a command is decided again after losing an optimistic
/// concurrency race before giving up.
const MAX_ATTEMPTS: usize = 20;
/// Streams kept folded in memory per aggregate type; past that the cache
/// starts over.
const CACHE_CAPACITY: usize = 10_000;

/// Who and what a command comes from; it becomes the metadata of the events
/// it causes.
#[derive(Debug, Clone, Copy)]
pub struct Causation {
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

impl Causation {
    /// A fresh request, by `user_id` if a user acts.
    pub fn request(correlation_id: Uuid, user_id: Option<Uuid>) -> Self {
        Self {
            correlation_id,
            causation_id: None,
            user_id,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Decided<D: Decider> {
    /// The new events; empty when the command changed nothing (a retry).
    pub events: Vec<D::Event>,
    /// The state after the command.
    pub state: D::State,
    /// The position of the stream's last event after the command, `None`
    /// only for a stream that is still empty.
    pub position: Option<Position>,
}

/// What a loaded aggregate is now.
#[derive(Debug, Clone)]
pub struct Loaded<D: Decider> {
    pub state: D::State,
    /// The position of the stream's last event, `None` for a stream that is
    /// still empty.
    pub position: Option<Position>,
}

/// Why a command was not carried out: the one error of the command side's
/// services, from the request's input to the event store. Nothing between
/// the event store and the HTTP edge turns it into text, so the edge can
/// answer each kind with its own status and log an internal error with its
/// whole chain of causes.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// A field of the request is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The aggregate refused the command.
    #[error(transparent)]
    Refused(E),
    /// Other writers kept winning the race for this stream.
    #[error("too much contention on stream {0}")]
    Contention(String),
    /// The event store cannot be reached (or is shutting down); the same
    /// command may succeed later.
    #[error("the event store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else: a stored event this build cannot read, an event it
    /// cannot write, a failed password hash. Not the client's doing.
    #[error("the command failed")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl<E> CommandError<E> {
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }
}

impl<E> From<StoreError> for CommandError<E> {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable { .. } | StoreError::Closed => Self::Unavailable(error),
            other => Self::internal(other),
        }
    }
}

impl<E> From<DecodeError> for CommandError<E> {
    fn from(error: DecodeError) -> Self {
        Self::internal(error)
    }
}

impl<E> From<EncodeError> for CommandError<E> {
    fn from(error: EncodeError) -> Self {
        Self::internal(error)
    }
}

#[derive(Clone)]
struct Folded<S> {
    state: S,
    revision: Option<u64>,
    position: Option<Position>,
}

/// Loads, decides and appends for one aggregate type, keeping recently used
/// streams folded so a hot stream (a popular product) is not re-read from
/// its start on every command.
pub struct Aggregates<D: Decider> {
    store: Arc<dyn EventStore>,
    cache: Mutex<HashMap<String, Folded<D::State>>>,
    decider: PhantomData<fn() -> D>,
}

impl<D> Aggregates<D>
where
    D: Decider,
    D::State: Clone,
    D::Event: DomainEvent,
{
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
            decider: PhantomData,
        }
    }

    pub fn stream_name(id: impl std::fmt::Display) -> StreamName {
        StreamName::new(D::Event::stream_name(id)).expect("category-uuid stream names are always valid")
    }

    /// The current state of the aggregate `id`.
    pub async fn load(&self, id: impl std::fmt::Display) -> Result<Loaded<D>, CommandError<D::Error>> {
        let stream = Self::stream_name(id);
        let folded = self.catch_up(&stream).await?;
        Ok(Loaded {
            state: folded.state,
            position: folded.position,
        })
    }

    /// Decides `command` on the aggregate `id` and appends what it decides,
    /// expecting the revision it loaded. After losing a race it reloads and
    /// decides again, so `command` must be callable more than once.
    pub async fn execute(
        &self,
        id: impl std::fmt::Display,
        causation: Causation,
        command: impl Fn() -> D::Command,
    ) -> Result<Decided<D>, CommandError<D::Error>> {
        let stream = Self::stream_name(id);
        for _ in 0..MAX_ATTEMPTS {
            let folded = self.catch_up(&stream).await?;
            let events = D::decide(&folded.state, command()).map_err(CommandError::Refused)?;
            if events.is_empty() {
                return Ok(Decided {
                    events,
                    state: folded.state,
                    position: folded.position,
                });
            }
            let encoded = encode(&events, causation)?;
            match self
                .store
                .append(&stream, ExpectedRevision::after(folded.revision), encoded)
                .await
            {
                Ok(outcome) => {
                    let state = events.iter().fold(folded.state, D::evolve);
                    self.remember(
                        &stream,
                        Folded {
                            state: state.clone(),
                            revision: Some(outcome.revision),
                            position: Some(outcome.position),
                        },
                    );
                    return Ok(Decided {
                        events,
                        state,
                        position: Some(outcome.position),
                    });
                }
                Err(StoreError::WrongExpectedRevision { .. }) => continue,
                Err(error) => {
                    // The append may or may not have happened: forget what we
                    // know and read the stream afresh next time.
                    self.forget(&stream);
                    return Err(error.into());
                }
            }
        }
        Err(CommandError::Contention(stream.to_string()))
    }

    /// The cached fold of `stream`, brought up to date with what was
    /// appended since.
    async fn catch_up(&self, stream: &StreamName) -> Result<Folded<D::State>, CommandError<D::Error>> {
        const PAGE: usize = 1000;
        let cached = self.lock().get(stream.as_str()).cloned();
        let mut folded = cached.unwrap_or(Folded {
            state: D::State::default(),
            revision: None,
            position: None,
        });
        loop {
            let from = folded.revision.map_or(0, |r| r + 1);
            let page = self.store.read_stream(stream, from, PAGE).await?;
            let done = page.len() < PAGE;
            for recorded in page {
                let event = D::Event::decode(&recorded.event_type, recorded.metadata.schema_version, &recorded.data)?;
                folded.state = D::evolve(folded.state, &event);
                folded.revision = Some(recorded.revision);
                folded.position = Some(recorded.position);
            }
            if done {
                break;
            }
        }
        self.remember(stream, folded.clone());
        Ok(folded)
    }

    fn remember(&self, stream: &StreamName, folded: Folded<D::State>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(stream.as_str()) {
            cache.clear();
        }
        let newer = cache
            .get(stream.as_str())
            .is_none_or(|known| known.revision < folded.revision);
        if newer {
            cache.insert(stream.to_string(), folded);
        }
    }

    fn forget(&self, stream: &StreamName) {
        self.lock().remove(stream.as_str());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Folded<D::State>>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn encode<E: DomainEvent>(events: &[E], causation: Causation) -> Result<Vec<NewEvent>, EncodeError> {
    events
        .iter()
        .map(|event| {
            let encoded = event.encode()?;
            Ok(NewEvent {
                id: Uuid::now_v7(),
                event_type: encoded.event_type,
                data: encoded.data,
                metadata: EventMetadata {
                    correlation_id: causation.correlation_id,
                    causation_id: causation.causation_id,
                    user_id: causation.user_id,
                    schema_version: encoded.schema_version,
                },
            })
        })
        .collect()
}
