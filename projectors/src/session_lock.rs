//! A Postgres session-level advisory lock on a connection of its own: what
//! entitles an instance to run a projection on Postgres.
//!
//! The lock lives exactly as long as the session that took it, so when its
//! holder's process dies (`kill -9`, a crash) Postgres sees the socket
//! close and releases it at once; the next instance to try takes it, with
//! no lease to wait out. (A host that vanishes closes nothing: then the
//! session's TCP keepalives, [`KEEPALIVES`], find it gone.) The connection is opened apart from the pool, as
//! a pooled one would carry the lock back into the pool with it.

use std::time::Duration;

use sea_orm::sqlx::{self, Connection, PgConnection};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

/// How long a try or a check of the session may take before the session
/// counts as lost (a network that drops packets answers nothing).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Postgres probes the session's socket after 5 s of silence, so that it
/// releases the lock of a holder whose host vanished (no FIN, no RST: a
/// power cut, a partition) within about 11 s, not after the kernel's 2 h
/// default. Ignored on Unix sockets.
const KEEPALIVES: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

/// One projection's lock, and the session that holds it or tries to.
pub struct SessionLock {
    key: i64,
    session: Option<PgConnection>,
}

impl SessionLock {
    /// The lock on `projection`, not yet tried: no session is open.
    pub fn new(projection: &str) -> Self {
        Self {
            key: key(projection),
            session: None,
        }
    }

    /// Takes the lock if no other session holds it (`pg_try_advisory_lock`,
    /// which never waits), opening a session from `db`'s settings first if
    /// there is none. A failed or silent session (past [`TIMEOUT`]) is
    /// dropped, so the next try opens a fresh one.
    pub async fn try_take(&mut self, db: &DatabaseConnection) -> Result<bool, DbErr> {
        let taken = tokio::time::timeout(TIMEOUT, self.try_take_now(db)).await;
        let taken =
            taken.unwrap_or_else(|_| Err(DbErr::Conn(RuntimeErr::Internal(format!("no answer in {TIMEOUT:?}")))));
        if taken.is_err() {
            self.session = None;
        }
        taken
    }

    async fn try_take_now(&mut self, db: &DatabaseConnection) -> Result<bool, DbErr> {
        let session = match &mut self.session {
            Some(session) => session,
            None => {
                let options = db.get_postgres_connection_pool().connect_options();
                let mut session = PgConnection::connect_with(&options).await.map_err(sql_error)?;
                sqlx::raw_sql(KEEPALIVES)
                    .execute(&mut session)
                    .await
                    .map_err(sql_error)?;
                self.session.insert(session)
            }
        };
        // Taken twice by one session, the lock would need two unlocks; only
        // closing the session releases it here, so that does not matter.
        sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut *session)
            .await
            .map_err(sql_error)
    }

    /// Whether the session that took the lock still answers, so still holds
    /// it. A session that does not answer is closed: whatever it held is
    /// released, or will be once Postgres notices.
    pub async fn still_held(&mut self) -> bool {
        let Some(session) = &mut self.session else {
            return false;
        };
        let answered = tokio::time::timeout(TIMEOUT, session.ping()).await;
        if !matches!(answered, Ok(Ok(()))) {
            self.session = None;
            return false;
        }
        true
    }

    /// Closes the session, which releases the lock if it was held.
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.close().await;
        }
    }
}

/// The lock's key for `projection` (`pg_locks` shows it as `classid`, its
/// high 32 bits, and `objid`, its low ones): apart from the per-transaction
/// lock of `database::lock_projection`, which serializes batches and
/// replays.
pub fn key(projection: &str) -> i64 {
    let name = format!("shop.lease.{projection}");
    let (key, _) = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).as_u64_pair();
    key.cast_signed()
}

fn sql_error(error: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(error.into()))
}
