//! The store's own schema. (The SQL views of the read side come from
//! `migrations/`; this file is the event log itself.)

use std::path::Path;

use rusqlite::Connection;

use crate::StoreError;

/// 1: the log; 2: snapshots and streams' max counts beside it.
const SCHEMA_VERSION: i64 = 2;

/// Opens a connection with the store's durability settings: WAL, and a full
/// sync of the log on every commit, so an acknowledged append survives a
/// power loss.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let fail = |e| StoreError::unavailable("opening the event store", e);
    let connection = Connection::open(path).map_err(fail)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(fail)?;
    connection.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
    connection.pragma_update(None, "synchronous", "FULL").map_err(fail)?;
    Ok(connection)
}

/// How SQLite keeps the log, read back from a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    /// `wal` for a file store (`memory` for `:memory:`).
    pub journal_mode: String,
    /// SQLite's `PRAGMA synchronous`: 2 (FULL) syncs the log on every commit,
    /// so an acknowledged append survives a power loss; 1 (NORMAL) only at
    /// checkpoints.
    pub synchronous: i64,
}

pub(super) fn durability(connection: &Connection) -> Result<Durability, StoreError> {
    let fail = |e| StoreError::unavailable("reading the event store's durability settings", e);
    Ok(Durability {
        journal_mode: connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(fail)?,
        synchronous: connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .map_err(fail)?,
    })
}

pub(super) fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let fail = |e| StoreError::unavailable("creating the event store schema", e);
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible {
            reason: format!("the file has store schema {version}, this build knows up to {SCHEMA_VERSION}"),
        });
    }
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                position    INTEGER PRIMARY KEY,
                event_id    BLOB    NOT NULL UNIQUE,
                stream      TEXT    NOT NULL,
                revision    INTEGER NOT NULL,
                event_type  TEXT    NOT NULL,
                data        BLOB    NOT NULL,
                metadata    BLOB    NOT NULL,
                recorded_at INTEGER NOT NULL,
                UNIQUE (stream, revision)
            );
            CREATE TABLE IF NOT EXISTS snapshots (
                stream           TEXT    PRIMARY KEY,
                revision         INTEGER NOT NULL,
                commit_position  INTEGER,
                prepare_position INTEGER,
                version          INTEGER NOT NULL,
                data             BLOB    NOT NULL
            );
            CREATE TABLE IF NOT EXISTS stream_limits (
                stream    TEXT    PRIMARY KEY,
                max_count INTEGER NOT NULL CHECK (max_count >= 1)
            );
            PRAGMA user_version = 2;",
        )
        .map_err(fail)
}
