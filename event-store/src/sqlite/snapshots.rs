//! The latest snapshot of each stream (`snapshots`), beside the log: not
//! events, so global readers never see them.

use rusqlite::{Connection, OptionalExtension};

use super::rows::to_sql_int;
use crate::{Position, Snapshot, StoreError};

/// Keeps `snapshot` unless one of a later revision is kept already (two
/// writers may snapshot the same stream; the newer fold wins).
pub(super) fn write(connection: &Connection, stream: &str, snapshot: &Snapshot) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO snapshots (stream, revision, commit_position, prepare_position, version, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (stream) DO UPDATE SET
                revision = excluded.revision, commit_position = excluded.commit_position,
                prepare_position = excluded.prepare_position, version = excluded.version, data = excluded.data
             WHERE excluded.revision >= snapshots.revision",
        )
        .and_then(|mut statement| {
            statement.execute((
                stream,
                to_sql_int(snapshot.revision),
                snapshot.position.map(|p| to_sql_int(p.commit)),
                snapshot.position.map(|p| to_sql_int(p.prepare)),
                i64::from(snapshot.version),
                &snapshot.data,
            ))
        })
        .map(|_| ())
        .map_err(|e| StoreError::unavailable("writing a snapshot", e))
}

type Row = (i64, Option<i64>, Option<i64>, i64, Vec<u8>);

pub(super) fn read(connection: &Connection, stream: &str) -> Result<Option<Snapshot>, StoreError> {
    let row: Option<Row> = connection
        .prepare_cached(
            "SELECT revision, commit_position, prepare_position, version, data FROM snapshots WHERE stream = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([stream], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })
                .optional()
        })
        .map_err(|e| StoreError::unavailable("reading a snapshot", e))?;
    let Some((revision, commit, prepare, version, data)) = row else {
        return Ok(None);
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        position: Position::at(commit.unwrap_or_default() as u64),
        detail: format!("snapshot of {stream}: {detail}"),
    };
    Ok(Some(Snapshot {
        revision: u64::try_from(revision).map_err(|_| corrupt(format!("negative revision {revision}")))?,
        position: commit
            .zip(prepare)
            .map(|(commit, prepare)| Position::new(commit as u64, prepare as u64)),
        version: u32::try_from(version).map_err(|_| corrupt(format!("version {version}")))?,
        data,
    }))
}
