//! Connecting to the views' database, and telling its outages from other
//! errors.

use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxSqliteError,
};

/// How long taking a connection from a pool may take, opening one
/// included, unless configured (`VIEWS_ACQUIRE_TIMEOUT_MS`). While the
/// database refuses connections the pool keeps trying for this long, so it
/// is how long a request waits before it fails during an outage.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one statement of a reader may run on Postgres unless
/// configured (`VIEWS_STATEMENT_TIMEOUT_MS`): a read held up by a lock or
/// an overloaded server fails instead of waiting for ever.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle this long is pinged before it is handed out,
/// so one the server dropped meanwhile (a restart, an idle timeout) is
/// replaced rather than failing a request. One in use more recently is
/// handed out as it is: sea-orm's default pings every connection taken,
/// a second round trip to the database for every read.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool: its size, and how long its users wait on a database that is
/// slow or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// At most this many connections (`VIEWS_POOL_SIZE`, see [`pool_size`]).
    pub size: u32,
    /// How long taking a connection may take, opening one included.
    pub acquire_timeout: Duration,
    /// Postgres' `statement_timeout` on every connection; `None` for none
    /// (writers whose statements wait for a lock as long as it is held: a
    /// projection's batch behind a replay, a migration behind another).
    pub statement_timeout: Option<Duration>,
}

impl Pool {
    /// `size` connections, no statement timeout, and the connection pool's
    /// own acquire timeout (30 s): for callers that configure nothing, such
    /// as tests. The services configure theirs (`VIEWS_ACQUIRE_TIMEOUT_MS`,
    /// [`DEFAULT_ACQUIRE_TIMEOUT`]).
    pub fn sized(size: u32) -> Self {
        Self {
            size,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: None,
        }
    }
}

impl From<u32> for Pool {
    fn from(size: u32) -> Self {
        Self::sized(size)
    }
}

/// Connects to `url` (`postgres://…` or `sqlite://path?mode=rwc`) with
/// `pool` (or a size: [`Pool::sized`]), leaving the schema as it is (see
/// [`crate::migrate`] and [`crate::require_current`]). SQLite files are
/// switched to WAL so that readers do not block the projectors. Fails when
/// the database does not answer within the acquire timeout.
pub async fn connect(url: &str, pool: impl Into<Pool>) -> Result<DatabaseConnection, DbErr> {
    let pool = pool.into();
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .max_connections(pool.size)
        .acquire_timeout(pool.acquire_timeout)
        .test_before_acquire_if_idle_for(PING_AFTER_IDLE);
    if let Some(timeout) = pool.statement_timeout {
        options.statement_timeout(timeout);
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .await?;
    }
    Ok(db)
}

/// Whether `error` says the database is unavailable for now — down,
/// unreachable, restarting, out of connections, too slow (a statement
/// cancelled by its timeout), or busy (SQLite's lock) — rather than that
/// the request or the code is wrong: worth retrying later, and answered
/// 503 rather than 500.
pub fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(error))
        | DbErr::Exec(RuntimeErr::SqlxError(error))
        | DbErr::Query(RuntimeErr::SqlxError(error)) => sqlx_unavailable(error),
        _ => false,
    }
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => {
            let sqlite = error.try_downcast_ref::<SqlxSqliteError>().is_some();
            error.code().is_some_and(|code| unavailable_code(&code, sqlite))
        }
        _ => false,
    }
}

/// Postgres: connection exceptions (SQLSTATE class 08), insufficient
/// resources (53, too many connections among them), operator intervention
/// (57: a statement cancelled by `statement_timeout`, the server shutting
/// down or starting up). SQLite: `SQLITE_BUSY` and `SQLITE_LOCKED` (5 and 6,
/// and their extended codes).
fn unavailable_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        return code.parse::<u32>().is_ok_and(|code| matches!(code & 0xff, 5 | 6));
    }
    ["08", "53", "57"].iter().any(|class| code.starts_with(class))
}

/// Where the views are when no URL is configured: a SQLite file under
/// `./data`, created on first use.
pub const DEFAULT_URL: &str = "sqlite://data/views.db?mode=rwc";

/// How many connections a pool opens: `configured` (a positive whole
/// number), or twice the `cores` and at least 4. More connections than the
/// database has cores to serve them only add context switches: on 2 cores
/// the query API served 11,200 requests/s with 4 connections and 7,700 with
/// 32 (p99 4.7 ms against 10.5 ms). The error says what is wrong with the
/// value; the caller names the variable.
pub fn pool_size(configured: Option<&str>, cores: u32) -> Result<u32, String> {
    match configured.filter(|v| !v.is_empty()) {
        Some(size) => match size.parse::<u32>() {
            Ok(size) if size > 0 => Ok(size),
            _ => Err(format!("{size:?} is not a positive whole number")),
        },
        None => Ok((2 * cores).max(4)),
    }
}

/// The cores this process may run on, for [`pool_size`].
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::{pool_size, unavailable_code};

    #[test]
    fn outages_are_told_from_errors_of_the_request_or_the_code() {
        // Postgres: connection lost, too many connections, statement timeout,
        // shutting down, starting up.
        for code in ["08006", "53300", "57014", "57P01", "57P03"] {
            assert!(unavailable_code(code, false), "{code}");
        }
        // A unique violation, a syntax error, a missing table.
        for code in ["23505", "42601", "42P01"] {
            assert!(!unavailable_code(code, false), "{code}");
        }
        // SQLite: busy, busy (snapshot), locked; a generic error, a unique violation.
        for (code, unavailable) in [("5", true), ("517", true), ("6", true), ("1", false), ("2067", false)] {
            assert_eq!(unavailable_code(code, true), unavailable, "{code}");
        }
    }

    #[test]
    fn the_pool_is_twice_the_cores_and_at_least_four_unless_configured() {
        assert_eq!(pool_size(None, 1), Ok(4));
        assert_eq!(pool_size(Some(""), 8), Ok(16));
        assert_eq!(pool_size(Some("3"), 8), Ok(3));
    }

    #[test]
    fn a_pool_size_that_is_not_a_positive_number_is_refused() {
        for bad in ["0", "-1", "four", "2.5"] {
            let error = pool_size(Some(bad), 2).unwrap_err();
            assert_eq!(error, format!("{bad:?} is not a positive whole number"));
        }
    }
}
