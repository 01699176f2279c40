//! Read connections, reused across calls and used off the async threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::StoreError;

/// Idle read connections. WAL lets them read while the writer writes; each
/// sees the log as of its last committed transaction.
#[derive(Clone)]
pub(super) struct ReaderPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl ReaderPool {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Arc::default(),
        }
    }

    /// Runs `read` on a pooled connection on the blocking thread pool.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let connection = pool.take()?;
            let result = read(&connection);
            pool.give_back(connection);
            result
        })
        .await
        .map_err(|e| StoreError::unavailable("running a read", e))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(connection) = self.lock().pop() {
            return Ok(connection);
        }
        super::schema::open_connection(&self.path)
    }

    fn give_back(&self, connection: Connection) {
        self.lock().push(connection);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves only a list of connections
        // behind, which is still valid.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
