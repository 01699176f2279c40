//! Loading aggregates, deciding, and appending: the one way every command
//! reaches the event store.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use domain::decider::{Answers, Decider};
use domain::event::{DecodeError, DomainEvent, EncodeError};
use domain::trace_id::TraceId;
use domain::validation::InvalidField;
use event_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, Snapshot, StoreError, StreamName,
};
use uuid::Uuid;

mod snapshots;

pub use self::snapshots::Snapshots;

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
    /// The W3C trace the correlation started in, if its request had one.
    pub trace_id: Option<TraceId>,
    pub causation_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

impl Causation {
    /// A fresh request, by `user_id` if a user acts, outside any trace.
    pub fn request(correlation_id: Uuid, user_id: Option<Uuid>) -> Self {
        Self {
            correlation_id,
            trace_id: None,
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
    /// The global position of the stream's last event after the command:
    /// the append's when it appended, otherwise as for [`Loaded::position`].
    /// `None` only for a stream that is still empty.
    pub position: Option<Position>,
}

/// What a loaded aggregate is now.
#[derive(Debug, Clone)]
pub struct Loaded<D: Decider> {
    pub state: D::State,
    /// The global position of the stream's last event (or, where the store
    /// does not report it on stream reads, the head of the log past it),
    /// `None` for a stream that is still empty.
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

/// What one decision on a stream's state comes to: the events to fold in,
/// the same events encoded for the append, and the caller's answer.
struct Decision<D: Decider, T> {
    events: Vec<D::Event>,
    encoded: Vec<NewEvent>,
    answer: T,
}

#[derive(Clone)]
struct Folded<S> {
    state: S,
    /// The revision of the last event folded in, `None` for an empty stream.
    revision: Option<u64>,
    /// That event's global position, `None` when the store did not report
    /// it (a stream read on an older EventStoreDB).
    position: Option<Position>,
    /// The revision of the latest snapshot known to be stored.
    snapshot: Option<u64>,
}

impl<S: Default> Folded<S> {
    fn empty() -> Self {
        Self {
            state: S::default(),
            revision: None,
            position: None,
            snapshot: None,
        }
    }
}

/// Loads, decides and appends for one aggregate type, keeping recently used
/// streams folded so a command on a hot stream (a popular product) is
/// decided without reading it (the append's expected revision catches what
/// the fold missed), and snapshotting long streams ([`Snapshots`]) so a
/// restart does not re-read them from their start.
///
/// The cache holds each fold behind an `Arc`: its lock is held only to
/// clone or swap one, never to copy a state. A command copies the state it
/// changes, outside the lock.
pub struct Aggregates<D: Decider> {
    store: Arc<dyn EventStore>,
    cache: Mutex<HashMap<String, Arc<Folded<D::State>>>>,
    decider: PhantomData<fn() -> D>,
}

impl<D> Aggregates<D>
where
    D: Snapshots,
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
            position: self.position_of(&folded).await?,
            state: folded.state.clone(),
        })
    }

    /// The state of the aggregate `id` as this process holds it folded, as
    /// of its last read or append, without reading the store: it may have
    /// missed other writers' events. `None` when it holds no fold, or one
    /// whose position the store did not report.
    pub fn held(&self, id: impl std::fmt::Display) -> Option<Loaded<D>> {
        let folded = self.cached(&Self::stream_name(id))?;
        Some(Loaded {
            position: Some(folded.position?),
            state: folded.state.clone(),
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
        let decide = |state: &D::State| {
            let events = D::decide(state, command()).map_err(CommandError::Refused)?;
            let encoded = encode(&events, causation)?;
            Ok(Decision {
                events,
                encoded,
                answer: (),
            })
        };
        let (decided, ()) = self.decide_and_append(&Self::stream_name(id), decide).await?;
        Ok(decided)
    }

    /// Decides `commands` on the aggregate `id` one after another, each on
    /// the state the ones before it left ([`Decider::decide_each`]), and
    /// appends all their events in one append, each event with its own
    /// command's causation: many orders' reservations on a hot product
    /// share one append instead of queueing one each. Each command gets
    /// its own answer, its events or its refusal, exactly as if the
    /// commands had been executed one by one. After losing a race it
    /// reloads and decides them all again.
    pub async fn execute_each(
        &self,
        id: impl std::fmt::Display,
        commands: &[(Causation, D::Command)],
    ) -> Result<Answers<D>, CommandError<D::Error>>
    where
        D::Command: Clone,
        D::Event: Clone,
    {
        let decide = |state: &D::State| {
            let (answer, _) = D::decide_each(state.clone(), commands.iter().map(|(_, command)| command.clone()));
            let (mut events, mut encoded) = (Vec::new(), Vec::new());
            for ((causation, _), decided) in commands.iter().zip(&answer) {
                if let Ok(decided) = decided {
                    encoded.extend(encode(decided, *causation)?);
                    events.extend(decided.iter().cloned());
                }
            }
            Ok(Decision {
                events,
                encoded,
                answer,
            })
        };
        let (_, answers) = self.decide_and_append(&Self::stream_name(id), decide).await?;
        Ok(answers)
    }

    /// Decides with `decide` on the state of `stream` and appends what it
    /// decided, expecting the revision it decided on; after losing a race,
    /// reads what it missed and decides again.
    ///
    /// The decision is first made without reading the stream: on the fold
    /// this process holds, or, for a stream it does not hold, on an empty
    /// one (a new order's stream is new). The append names the revision the
    /// decision was made on, so a fold that missed events costs a lost race
    /// and a read, never a wrong event. A decision that appends nothing (a
    /// refusal, a retry answered by what was decided then) has no such
    /// check, so it is given only once the stream was read.
    async fn decide_and_append<T>(
        &self,
        stream: &StreamName,
        decide: impl Fn(&D::State) -> Result<Decision<D, T>, CommandError<D::Error>>,
    ) -> Result<(Decided<D>, T), CommandError<D::Error>> {
        let mut folded = self.cached(stream).unwrap_or_else(|| Arc::new(Folded::empty()));
        let mut read = false;
        for _ in 0..MAX_ATTEMPTS {
            let decision = match decide(&folded.state) {
                Ok(decision) if read || !decision.encoded.is_empty() => decision,
                Err(error) if read => return Err(error),
                // Nothing to append, decided on a fold that may have missed
                // events: read them, and decide again.
                Ok(_) | Err(_) => {
                    folded = self.catch_up(stream).await?;
                    read = true;
                    continue;
                }
            };
            let Decision {
                events,
                encoded,
                answer,
            } = decision;
            if encoded.is_empty() {
                let decided = Decided {
                    events,
                    position: self.position_of(&folded).await?,
                    state: folded.state.clone(),
                };
                return Ok((decided, answer));
            }
            match self
                .store
                .append(stream, ExpectedRevision::after(folded.revision), encoded)
                .await
            {
                Ok(outcome) => return Ok((self.appended(stream, &folded, events, outcome).await, answer)),
                Err(StoreError::WrongExpectedRevision { .. }) => {
                    folded = self.catch_up(stream).await?;
                    read = true;
                }
                Err(error) => {
                    // The append may or may not have happened: forget what we
                    // know and read the stream afresh next time.
                    self.forget(stream);
                    return Err(error.into());
                }
            }
        }
        Err(CommandError::Contention(stream.to_string()))
    }

    /// Folds the events just appended into `before` and caches the result.
    async fn appended(
        &self,
        stream: &StreamName,
        before: &Folded<D::State>,
        events: Vec<D::Event>,
        outcome: AppendOutcome,
    ) -> Decided<D> {
        let after = Folded {
            state: events.iter().fold(before.state.clone(), D::evolve),
            revision: Some(outcome.revision),
            position: Some(outcome.position),
            snapshot: before.snapshot,
        };
        let after = self.snapshot_if_due(stream, after).await;
        let state = after.state.clone();
        self.remember(stream, Arc::new(after));
        Decided {
            events,
            state,
            position: Some(outcome.position),
        }
    }

    /// Where a client reads the stream's last event: its global position,
    /// from the append that wrote it or from the store. When the store did
    /// not report it, the head of the log, which is at or past it and which
    /// subscribers reach; never a made-up position.
    async fn position_of(&self, folded: &Folded<D::State>) -> Result<Option<Position>, CommandError<D::Error>> {
        match (folded.revision, folded.position) {
            (None, _) => Ok(None),
            (Some(_), Some(position)) => Ok(Some(position)),
            (Some(_), None) => Ok(self.store.head().await?),
        }
    }

    /// The cached fold of `stream` (or its snapshot), brought up to date with
    /// what was appended since.
    async fn catch_up(&self, stream: &StreamName) -> Result<Arc<Folded<D::State>>, CommandError<D::Error>> {
        let cached = self.cached(stream);
        let was_cached = cached.is_some();
        let start = match cached {
            Some(folded) => folded,
            None => Arc::new(self.load_snapshot(stream).await?),
        };
        let folded = match self.fold_newer(stream, &start).await? {
            Some(newer) => Arc::new(self.snapshot_if_due(stream, newer).await),
            None if was_cached => return Ok(start),
            None => start,
        };
        self.remember(stream, Arc::clone(&folded));
        Ok(folded)
    }

    /// `start` with the events after it folded in; `None` when there are none.
    async fn fold_newer(
        &self,
        stream: &StreamName,
        start: &Folded<D::State>,
    ) -> Result<Option<Folded<D::State>>, CommandError<D::Error>> {
        const PAGE: usize = 1000;
        let mut folded: Option<Folded<D::State>> = None;
        loop {
            let from = folded.as_ref().unwrap_or(start).revision.map_or(0, |r| r + 1);
            let page = self.store.read_stream(stream, from, PAGE).await?;
            let done = page.len() < PAGE;
            if !page.is_empty() {
                let mut next = folded.take().unwrap_or_else(|| start.clone());
                for recorded in page {
                    let event =
                        D::Event::decode(&recorded.event_type, recorded.metadata.schema_version, &recorded.data)?;
                    next.state = D::evolve(next.state, &event);
                    next.revision = Some(recorded.revision);
                    next.position = recorded.global_position();
                }
                folded = Some(next);
            }
            if done {
                return Ok(folded);
            }
        }
    }

    /// The stream's latest snapshot as a fold, or an empty fold when there
    /// is none to use. A snapshot that cannot be read (another version, a
    /// bad one) only costs a fold from the start.
    async fn load_snapshot(&self, stream: &StreamName) -> Result<Folded<D::State>, CommandError<D::Error>> {
        if D::EVERY.is_none() {
            return Ok(Folded::empty());
        }
        let snapshot = match self.store.read_snapshot(stream).await {
            Ok(Some(snapshot)) if snapshot.version == D::VERSION => snapshot,
            Ok(_) => return Ok(Folded::empty()),
            Err(error @ (StoreError::Unavailable { .. } | StoreError::Closed)) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot unreadable; folding the stream from its start");
                return Ok(Folded::empty());
            }
        };
        match D::decode_snapshot(&snapshot.data) {
            Ok(state) => Ok(Folded {
                state,
                revision: Some(snapshot.revision),
                position: snapshot.position,
                snapshot: Some(snapshot.revision),
            }),
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot undecodable; folding the stream from its start");
                Ok(Folded::empty())
            }
        }
    }

    /// Writes a snapshot of `folded` when [`Snapshots::EVERY`] events were
    /// folded since the last one. A failure is logged and costs only a
    /// longer load later: the events are the truth.
    async fn snapshot_if_due(&self, stream: &StreamName, mut folded: Folded<D::State>) -> Folded<D::State> {
        let (Some(every), Some(revision)) = (D::EVERY, folded.revision) else {
            return folded;
        };
        let since = folded
            .snapshot
            .map_or(revision + 1, |snapshot| revision.saturating_sub(snapshot));
        if since < every {
            return folded;
        }
        let Some(data) = D::encode_snapshot(&folded.state) else {
            return folded;
        };
        let snapshot = Snapshot {
            revision,
            position: folded.position,
            version: D::VERSION,
            data,
        };
        match self.store.write_snapshot(stream, snapshot).await {
            Ok(()) => folded.snapshot = Some(revision),
            Err(error) => tracing::warn!(%stream, %error, "snapshot not written"),
        }
        folded
    }

    /// The fold of `stream` this process holds, as of its last read or
    /// append; it may have missed other writers' events.
    fn cached(&self, stream: &StreamName) -> Option<Arc<Folded<D::State>>> {
        self.lock().get(stream.as_str()).cloned()
    }

    fn remember(&self, stream: &StreamName, folded: Arc<Folded<D::State>>) {
        let mut cache = self.lock();
        let dropped = if cache.len() >= CACHE_CAPACITY && !cache.contains_key(stream.as_str()) {
            std::mem::take(&mut *cache)
        } else {
            HashMap::new()
        };
        let newer = cache
            .get(stream.as_str())
            .is_none_or(|known| known.revision < folded.revision);
        if newer {
            cache.insert(stream.to_string(), folded);
        }
        drop(cache);
        // The folds of a full cache are freed after the lock is let go.
        drop(dropped);
    }

    fn forget(&self, stream: &StreamName) {
        let forgotten = self.lock().remove(stream.as_str());
        drop(forgotten);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Folded<D::State>>>> {
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
                    trace_id: causation.trace_id,
                    causation_id: causation.causation_id,
                    user_id: causation.user_id,
                    schema_version: encoded.schema_version,
                },
            })
        })
        .collect()
}
