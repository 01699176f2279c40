//! Streams kept to their last events (`stream_limits`): the embedded
//! store's `$maxCount`.

use rusqlite::Connection;

use super::rows::to_sql_int;
use crate::StoreError;

/// Sets `stream`'s max count and deletes what it no longer keeps.
pub(super) fn set_max_count(connection: &Connection, stream: &str, max_count: u64) -> Result<(), StoreError> {
    let failed = |e| StoreError::unavailable("setting a stream's max count", e);
    connection
        .prepare_cached(
            "INSERT INTO stream_limits (stream, max_count) VALUES (?1, ?2)
             ON CONFLICT (stream) DO UPDATE SET max_count = excluded.max_count",
        )
        .and_then(|mut statement| statement.execute((stream, to_sql_int(max_count))))
        .map_err(failed)?;
    let last: Option<i64> = connection
        .prepare_cached("SELECT MAX(revision) FROM events WHERE stream = ?1")
        .and_then(|mut statement| statement.query_row([stream], |row| row.get(0)))
        .map_err(failed)?;
    match last {
        Some(last) => trim(connection, stream, last as u64),
        None => Ok(()),
    }
}

/// Deletes the events of `stream` that its max count (if it has one) no
/// longer keeps, `last_revision` being its newest. The newest event of the
/// stream is always kept, and the events deleted are older than it: the
/// last row of the table is never deleted, so a row id (a position) is
/// never handed out twice.
pub(super) fn trim(connection: &Connection, stream: &str, last_revision: u64) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "DELETE FROM events WHERE stream = ?1
             AND revision <= ?2 - (SELECT max_count FROM stream_limits WHERE stream = ?1)",
        )
        .and_then(|mut statement| statement.execute((stream, to_sql_int(last_revision))))
        .map(|_| ())
        .map_err(|e| StoreError::unavailable("trimming a stream to its max count", e))
}
