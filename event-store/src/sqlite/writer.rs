//! The single writer thread and its group commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::rows::to_sql_int;
use super::tail::{self, Committed};
use crate::event::encode_metadata;
use crate::{AppendOutcome, ExpectedRevision, NewEvent, Position, RecordedEvent, StoreError, StreamName};

/// What the writer thread does, in the order asked.
pub(super) enum Request {
    Append(AppendRequest),
    /// A write that is not an append (a snapshot, a stream's max count), in
    /// its own transaction, in turn with the appends.
    Other(OtherWrite),
}

/// A write to run in the writer's transaction.
pub(super) type Write = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

pub(super) struct OtherWrite {
    pub write: Write,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

pub(super) struct AppendRequest {
    pub stream: StreamName,
    pub expected: ExpectedRevision,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// What the writer counts, read by [`super::SqliteEventStore::writer_stats`].
#[derive(Default)]
pub(super) struct Counters {
    pub taken_appends: AtomicU64,
    pub commits: AtomicU64,
}

/// Where the writer tells this process what it committed: the head of the
/// log after each commit, and the commit's events.
pub(super) struct Published {
    pub head: Arc<watch::Sender<Option<Position>>>,
    pub tail: tail::Sender,
}

/// Starts the writer thread; it ends when every sender is dropped.
pub(super) fn spawn(
    connection: Connection,
    published: Published,
    counters: Arc<Counters>,
    max_group: usize,
) -> Result<mpsc::Sender<Request>, StoreError> {
    let (sender, receiver) = mpsc::channel(max_group.max(1) * 4);
    std::thread::Builder::new()
        .name("event-store-writer".to_owned())
        .spawn(move || run(connection, receiver, &published, &counters, max_group.max(1)))
        .map_err(|e| StoreError::unavailable("starting the event store writer", e))?;
    Ok(sender)
}

fn run(
    mut connection: Connection,
    mut receiver: mpsc::Receiver<Request>,
    published: &Published,
    counters: &Counters,
    max_group: usize,
) {
    let mut group = Vec::with_capacity(max_group);
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match receiver.blocking_recv() {
                Some(request) => request,
                None => return,
            },
        };
        match request {
            Request::Other(other) => {
                let result = write_other(&mut connection, other.write);
                // The caller may have given up waiting; the write stands anyway.
                let _ = other.reply.send(result);
            }
            Request::Append(first) => {
                group.push(first);
                while group.len() < max_group {
                    match receiver.try_recv() {
                        Ok(Request::Append(request)) => group.push(request),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_and_reply(&mut connection, &mut group, published, counters);
            }
        }
    }
}

/// Commits the group, publishes the new head and (when this process has
/// subscribers) the commit's events, and answers each append.
fn commit_and_reply(
    connection: &mut Connection,
    group: &mut Vec<AppendRequest>,
    published: &Published,
    counters: &Counters,
) {
    counters.taken_appends.fetch_add(group.len() as u64, Ordering::Relaxed);
    let recorded_at = chrono::Utc::now().timestamp_micros();
    let (after, applied) = commit_group(connection, group, recorded_at, counters);
    let last = applied
        .iter()
        .filter_map(|applied| applied.as_ref().ok())
        .map(|applied| applied.outcome.position)
        .max();
    if let Some(position) = last {
        published.head.send_if_modified(|current| {
            let newer = current.is_none_or(|c| position > c);
            if newer {
                *current = Some(position);
            }
            newer
        });
    }
    let subscribed = published.tail.receiver_count() > 0;
    let mut committed = Vec::new();
    for (request, applied) in group.drain(..).zip(applied) {
        let AppendRequest {
            stream, events, reply, ..
        } = request;
        let outcome = applied.map(|applied| {
            if subscribed {
                committed.extend(recorded(&stream, events, &applied, recorded_at));
            }
            applied.outcome
        });
        // The caller may have given up waiting; the append stands anyway.
        let _ = reply.send(outcome);
    }
    if !committed.is_empty() {
        // Subscribers that went away since are no one's loss.
        let _ = published.tail.send(Arc::new(Committed {
            after,
            events: committed,
        }));
    }
}

/// What one append wrote: its outcome, and the positions of the events it
/// inserted, none for a retry answered with the original outcome.
struct Applied {
    outcome: AppendOutcome,
    positions: Vec<Position>,
}

/// The events of an append as they were stored, as a read would return them.
fn recorded(
    stream: &StreamName,
    events: Vec<NewEvent>,
    applied: &Applied,
    recorded_at: i64,
) -> impl Iterator<Item = RecordedEvent> {
    let first_revision = applied.outcome.revision + 1 - applied.positions.len() as u64;
    let recorded_at = chrono::DateTime::from_timestamp_micros(recorded_at).unwrap_or_default();
    let stream = stream.to_string();
    events
        .into_iter()
        .zip(applied.positions.iter().copied())
        .zip(first_revision..)
        .map(move |((event, position), revision)| RecordedEvent {
            id: event.id,
            stream: stream.clone(),
            revision,
            position,
            event_type: event.event_type,
            data: event.data,
            metadata: event.metadata,
            recorded_at,
        })
}

fn write_other(connection: &mut Connection, write: Write) -> Result<(), StoreError> {
    let failed = |e| StoreError::unavailable("writing", e);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    write(&transaction)?;
    transaction.commit().map_err(failed)
}

/// Applies every request of the group in one transaction, each in its own
/// savepoint, and commits once. If the commit fails, every request fails.
/// Returns, with each request's outcome, the last position of the log
/// before the transaction.
fn commit_group(
    connection: &mut Connection,
    group: &[AppendRequest],
    recorded_at: i64,
    counters: &Counters,
) -> (Option<Position>, Vec<Result<Applied, StoreError>>) {
    let failed_all = |context: &'static str, message: String| -> (Option<Position>, Vec<Result<Applied, StoreError>>) {
        let failed = group
            .iter()
            .map(|_| Err(StoreError::unavailable(context, std::io::Error::other(message.clone()))))
            .collect();
        (None, failed)
    };
    let mut transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(e) => return failed_all("starting an append", e.to_string()),
    };
    let after = match super::rows::head(&transaction) {
        Ok(after) => after,
        Err(e) => return failed_all("reading the head before an append", e.to_string()),
    };
    let mut applied = Vec::with_capacity(group.len());
    for request in group {
        applied.push(apply_in_savepoint(&mut transaction, request, recorded_at));
    }
    match transaction.commit() {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            (after, applied)
        }
        Err(e) => failed_all("committing an append", e.to_string()),
    }
}

fn apply_in_savepoint(
    transaction: &mut Transaction<'_>,
    request: &AppendRequest,
    recorded_at: i64,
) -> Result<Applied, StoreError> {
    let savepoint_failed = |e| StoreError::unavailable("appending", e);
    let savepoint = transaction.savepoint().map_err(savepoint_failed)?;
    let outcome = apply(&savepoint, request, recorded_at)?;
    savepoint.commit().map_err(savepoint_failed)?;
    Ok(outcome)
}

/// One append: the idempotency check, the expected revision, the inserts.
fn apply(connection: &Connection, request: &AppendRequest, recorded_at: i64) -> Result<Applied, StoreError> {
    let failed = |e| StoreError::unavailable("appending", e);
    let stream = request.stream.as_str();
    if let Some(outcome) = earlier_identical_append(connection, request)? {
        return Ok(Applied {
            outcome,
            positions: Vec::new(),
        });
    }
    let current: Option<i64> = connection
        .prepare_cached("SELECT MAX(revision) FROM events WHERE stream = ?1")
        .and_then(|mut statement| statement.query_row([stream], |row| row.get(0)))
        .map_err(failed)?;
    let current = current.map(|r| r as u64);
    if !request.expected.is_met_by(current) {
        return Err(StoreError::WrongExpectedRevision {
            stream: stream.to_owned(),
            expected: request.expected,
            actual: current,
        });
    }
    let mut insert = connection
        .prepare_cached(
            "INSERT INTO events (event_id, stream, revision, event_type, data, metadata, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(failed)?;
    let first_revision = current.map_or(0, |r| r + 1);
    let mut positions = Vec::with_capacity(request.events.len());
    for (offset, event) in request.events.iter().enumerate() {
        let revision = first_revision + offset as u64;
        let inserted = insert.execute((
            event.id.as_bytes().as_slice(),
            stream,
            to_sql_int(revision),
            &event.event_type,
            &event.data,
            encode_metadata(&event.metadata),
            recorded_at,
        ));
        match inserted {
            Ok(_) => positions.push(Position::at(connection.last_insert_rowid() as u64)),
            Err(e) if is_unique_violation(&e) => return Err(StoreError::DuplicateEventId { id: event.id }),
            Err(e) => return Err(failed(e)),
        }
    }
    let last_revision = first_revision + request.events.len() as u64 - 1;
    super::limits::trim(connection, stream, last_revision)?;
    let Some(&position) = positions.last() else {
        return Err(StoreError::InvalidEvent {
            reason: "an append needs at least one event".to_owned(),
        });
    };
    Ok(Applied {
        outcome: AppendOutcome {
            revision: last_revision,
            position,
        },
        positions,
    })
}

/// If the request's first event id is stored already, the request is either
/// a retry of that same append (same stream, same ids in the same order),
/// answered with the original outcome, or a duplicate id, refused.
fn earlier_identical_append(
    connection: &Connection,
    request: &AppendRequest,
) -> Result<Option<AppendOutcome>, StoreError> {
    let failed = |e| StoreError::unavailable("checking for a repeated append", e);
    let first = &request.events[0];
    let found: Option<(String, i64)> = connection
        .prepare_cached("SELECT stream, revision FROM events WHERE event_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([first.id.as_bytes().as_slice()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(failed)?;
    let Some((stream, revision)) = found else {
        return Ok(None);
    };
    if stream != request.stream.as_str() {
        return Err(StoreError::DuplicateEventId { id: first.id });
    }
    let mut statement = connection
        .prepare_cached(
            "SELECT event_id, revision, position FROM events
             WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3",
        )
        .map_err(failed)?;
    let stored: Vec<(Vec<u8>, i64, i64)> = statement
        .query_map((stream.as_str(), revision, request.events.len() as i64), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .and_then(Iterator::collect)
        .map_err(failed)?;
    let same_ids = stored.len() == request.events.len()
        && stored
            .iter()
            .zip(&request.events)
            .all(|((id, _, _), event)| Uuid::from_slice(id).is_ok_and(|id| id == event.id));
    match stored.last() {
        Some((_, revision, position)) if same_ids => Ok(Some(AppendOutcome {
            revision: *revision as u64,
            position: Position::at(*position as u64),
        })),
        _ => Err(StoreError::DuplicateEventId { id: first.id }),
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}
