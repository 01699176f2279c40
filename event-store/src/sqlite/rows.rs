//! Reading events out of the `events` table, with every stored value checked.

use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value};
use uuid::Uuid;

use crate::{EventMetadata, Position, RecordedEvent, StoreError, StreamFilter, StreamName};

const COLUMNS: &str = "position, event_id, stream, revision, event_type, data, metadata, recorded_at";

fn query_failed(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable("reading events", e)
}

pub(super) fn read_stream(
    connection: &Connection,
    stream: &StreamName,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3"
        ))
        .map_err(query_failed)?;
    let rows = statement
        .query((stream.as_str(), to_sql_int(from), to_sql_limit(limit)))
        .map_err(query_failed)?;
    collect(rows)
}

pub(super) fn read_last(connection: &Connection, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream = ?1 ORDER BY revision DESC LIMIT 1"
        ))
        .map_err(query_failed)?;
    let rows = statement.query([stream.as_str()]).map_err(query_failed)?;
    Ok(collect(rows)?.pop())
}

/// The revision of the stream's last event, from the `(stream, revision)`
/// index alone (it holds the position too, SQLite's row id): neither the
/// event's data nor its metadata is read.
pub(super) fn last_revision(connection: &Connection, stream: &StreamName) -> Result<Option<u64>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT position, revision FROM events WHERE stream = ?1 ORDER BY revision DESC LIMIT 1")
        .map_err(query_failed)?;
    let last: Option<(i64, i64)> = statement
        .query_row([stream.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(query_failed)?;
    last.map(|(position, revision)| {
        u64::try_from(revision).map_err(|_| StoreError::Corrupt {
            position: Position::at(position as u64),
            detail: format!("negative revision {revision}"),
        })
    })
    .transpose()
}

pub(super) fn read_all(
    connection: &Connection,
    after: Option<Position>,
    limit: usize,
    filter: &StreamFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let prefixes = filter.as_prefixes();
    let prefix_clause = if prefixes.is_empty() {
        String::new()
    } else {
        let alternatives: Vec<String> = (0..prefixes.len())
            .map(|i| format!("substr(stream, 1, length(?{})) = ?{}", i + 3, i + 3))
            .collect();
        format!(" AND ({})", alternatives.join(" OR "))
    };
    let sql = format!("SELECT {COLUMNS} FROM events WHERE position > ?1{prefix_clause} ORDER BY position LIMIT ?2");
    let mut statement = connection.prepare_cached(&sql).map_err(query_failed)?;
    let after = after.map_or(0, |p| to_sql_int(p.commit));
    let mut parameters = vec![Value::Integer(after), Value::Integer(to_sql_limit(limit))];
    parameters.extend(prefixes.iter().map(|p| Value::Text(p.clone())));
    let rows = statement.query(params_from_iter(parameters)).map_err(query_failed)?;
    collect(rows)
}

pub(super) fn head(connection: &Connection) -> Result<Option<Position>, StoreError> {
    let last: Option<i64> = connection
        .query_row("SELECT MAX(position) FROM events", [], |row| row.get(0))
        .map_err(query_failed)?;
    Ok(last.map(|p| Position::at(p as u64)))
}

/// Decodes rows until the first corrupt one. The events before it are
/// returned, so a reader gets everything up to the damage, and the next read
/// from there reports it.
fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(query_failed)? {
        match decode(row) {
            Ok(event) => events.push(event),
            Err(error) if events.is_empty() => return Err(error),
            Err(_) => break,
        }
    }
    Ok(events)
}

/// Turns a row into an event, refusing anything a healthy store never wrote.
fn decode(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.get(0).map_err(query_failed)?;
    let position = Position::at(position as u64);
    let corrupt = |detail: String| StoreError::Corrupt { position, detail };
    let column = |e: rusqlite::Error| corrupt(e.to_string());
    let id: Vec<u8> = row.get(1).map_err(column)?;
    let id = Uuid::from_slice(&id).map_err(|e| corrupt(format!("event id: {e}")))?;
    let stream: String = row.get(2).map_err(column)?;
    let revision: i64 = row.get(3).map_err(column)?;
    let revision = u64::try_from(revision).map_err(|_| corrupt(format!("negative revision {revision}")))?;
    let event_type: String = row.get(4).map_err(column)?;
    let data: Vec<u8> = row.get(5).map_err(column)?;
    let metadata: Vec<u8> = row.get(6).map_err(column)?;
    let metadata: EventMetadata = serde_json::from_slice(&metadata).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let recorded_at: i64 = row.get(7).map_err(column)?;
    let recorded_at = chrono::DateTime::from_timestamp_micros(recorded_at)
        .ok_or_else(|| corrupt(format!("timestamp {recorded_at} out of range")))?;
    Ok(RecordedEvent {
        id,
        stream,
        revision,
        position,
        event_type,
        data,
        metadata,
        recorded_at,
    })
}

/// SQLite integers are signed; revisions and positions never come near the top.
pub(super) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
