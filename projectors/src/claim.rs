//! How an instance claims a projection, so that one instance at a time runs
//! it: on Postgres a session advisory lock (`session_lock.rs`), released
//! the moment its holder's connection dies, so another instance takes over
//! within [`POSTGRES_RETRY`] of a `kill -9`; on SQLite, which has no such
//! lock across processes, a lease row (`lease.rs`) that lapses `lease_ttl`
//! after its holder's last renewal.
//!
//! On Postgres the lease row is written too, but only as a record of who
//! holds the lock (the admin API's `heldBy`): the lock decides.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use crate::lease;
use crate::session_lock::SessionLock;

/// How often an instance waiting for a projection tries its lock on
/// Postgres: the most a fail-over waits once the holder's session is gone.
pub const POSTGRES_RETRY: Duration = Duration::from_millis(250);

/// One instance's claim on one projection, held or wanted.
pub struct Claim {
    db: DatabaseConnection,
    projection: &'static str,
    holder: String,
    /// How long a lease row lasts unless renewed (renewed every third).
    lease_ttl: Duration,
    /// On Postgres, the lock; `None` on SQLite.
    lock: Option<SessionLock>,
}

impl Claim {
    pub fn new(db: DatabaseConnection, projection: &'static str, holder: String, lease_ttl: Duration) -> Self {
        let lock = (db.get_database_backend() == DbBackend::Postgres).then(|| SessionLock::new(projection));
        Self {
            db,
            projection,
            holder,
            lease_ttl,
            lock,
        }
    }

    /// Takes the projection if no other instance has it; `false` while one
    /// does.
    pub async fn take(&mut self) -> Result<bool, DbErr> {
        let Some(lock) = &mut self.lock else {
            return lease::acquire(&self.db, self.projection, &self.holder, self.lease_ttl).await;
        };
        if !lock.try_take(&self.db).await? {
            return Ok(false);
        }
        if let Err(error) = lease::record(&self.db, self.projection, &self.holder, self.lease_ttl).await {
            // Not taken after all: the next try starts clean.
            lock.close().await;
            return Err(error);
        }
        Ok(true)
    }

    /// Keeps the projection: renews the lease row, and on Postgres checks
    /// that the lock's session still answers. `false` when the projection
    /// is lost to another instance (or may be: the session is gone).
    pub async fn keep(&mut self) -> Result<bool, DbErr> {
        let Some(lock) = &mut self.lock else {
            return lease::acquire(&self.db, self.projection, &self.holder, self.lease_ttl).await;
        };
        if !lock.still_held().await {
            return Ok(false);
        }
        lease::record(&self.db, self.projection, &self.holder, self.lease_ttl).await?;
        Ok(true)
    }

    /// Gives the projection up (held or not), so that another instance
    /// need not wait for it.
    pub async fn give_up(&mut self) {
        if let Err(error) = lease::release(&self.db, self.projection, &self.holder).await {
            tracing::warn!(projection = self.projection, %error, "cannot release the lease row");
        }
        if let Some(lock) = &mut self.lock {
            lock.close().await;
        }
    }

    /// How long to wait before trying again after `take` answered `false`.
    pub fn retry_after(&self) -> Duration {
        match self.lock {
            Some(_) => POSTGRES_RETRY,
            None => self.lease_ttl / 3,
        }
    }

    /// How often the holder renews: a third of the lease, so two renewals
    /// can fail before it lapses.
    pub fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// How long renewals may fail before the holder stops.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    pub fn projection(&self) -> &'static str {
        self.projection
    }
}
