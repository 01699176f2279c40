//! The single writer thread and its group commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::rows::to_sql_int;
use crate::event::encode_metadata;
use crate::{AppendOutcome, ExpectedRevision, NewEvent, Position, StoreError, StreamName};

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

/// Starts the writer thread; it ends when every sender is dropped.
pub(super) fn spawn(
    connection: Connection,
    head: Arc<watch::Sender<Option<Position>>>,
    counters: Arc<Counters>,
    max_group: usize,
) -> Result<mpsc::Sender<Request>, StoreError> {
    let (sender, receiver) = mpsc::channel(max_group.max(1) * 4);
    std::thread::Builder::new()
        .name("event-store-writer".to_owned())
        .spawn(move || run(connection, receiver, &head, &counters, max_group.max(1)))
        .map_err(|e| StoreError::unavailable("starting the event store writer", e))?;
    Ok(sender)
}

fn run(
    mut connection: Connection,
    mut receiver: mpsc::Receiver<Request>,
    head: &watch::Sender<Option<Position>>,
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
                commit_and_reply(&mut connection, &mut group, head, counters);
            }
        }
    }
}

fn commit_and_reply(
    connection: &mut Connection,
    group: &mut Vec<AppendRequest>,
    head: &watch::Sender<Option<Position>>,
    counters: &Counters,
) {
    counters.taken_appends.fetch_add(group.len() as u64, Ordering::Relaxed);
    let outcomes = commit_group(connection, group, counters);
    let last = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .map(|outcome| outcome.position)
        .max();
    if let Some(position) = last {
        head.send_if_modified(|current| {
            let newer = current.is_none_or(|c| position > c);
            if newer {
                *current = Some(position);
            }
            newer
        });
    }
    for (request, outcome) in group.drain(..).zip(outcomes) {
        // The caller may have given up waiting; the append stands anyway.
        let _ = request.reply.send(outcome);
    }
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
fn commit_group(
    connection: &mut Connection,
    group: &[AppendRequest],
    counters: &Counters,
) -> Vec<Result<AppendOutcome, StoreError>> {
    let failed_all = |context: &'static str, e: rusqlite::Error| -> Vec<Result<AppendOutcome, StoreError>> {
        let message = e.to_string();
        group
            .iter()
            .map(|_| Err(StoreError::unavailable(context, std::io::Error::other(message.clone()))))
            .collect()
    };
    let mut transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(e) => return failed_all("starting an append", e),
    };
    let recorded_at = chrono::Utc::now().timestamp_micros();
    let mut outcomes = Vec::with_capacity(group.len());
    for request in group {
        outcomes.push(apply_in_savepoint(&mut transaction, request, recorded_at));
    }
    match transaction.commit() {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            outcomes
        }
        Err(e) => failed_all("committing an append", e),
    }
}

fn apply_in_savepoint(
    transaction: &mut Transaction<'_>,
    request: &AppendRequest,
    recorded_at: i64,
) -> Result<AppendOutcome, StoreError> {
    let savepoint_failed = |e| StoreError::unavailable("appending", e);
    let savepoint = transaction.savepoint().map_err(savepoint_failed)?;
    let outcome = apply(&savepoint, request, recorded_at)?;
    savepoint.commit().map_err(savepoint_failed)?;
    Ok(outcome)
}

/// One append: the idempotency check, the expected revision, the inserts.
fn apply(connection: &Connection, request: &AppendRequest, recorded_at: i64) -> Result<AppendOutcome, StoreError> {
    let failed = |e| StoreError::unavailable("appending", e);
    let stream = request.stream.as_str();
    if let Some(outcome) = earlier_identical_append(connection, request)? {
        return Ok(outcome);
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
    let mut position = 0;
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
            Ok(_) => position = connection.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) => return Err(StoreError::DuplicateEventId { id: event.id }),
            Err(e) => return Err(failed(e)),
        }
    }
    let last_revision = first_revision + request.events.len() as u64 - 1;
    super::limits::trim(connection, stream, last_revision)?;
    Ok(AppendOutcome {
        revision: last_revision,
        position: Position::at(position as u64),
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
