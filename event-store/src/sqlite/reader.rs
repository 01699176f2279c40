//! Read connections, reused across calls and used off the async threads,
//! at most a few at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::StoreError;

/// Idle read connections, and the permits that bound how many reads run at
/// once. WAL lets them read while the writer writes; each sees the log as
/// of its last committed transaction.
///
/// Without the bound every concurrent read opened a connection of its own
/// and took a blocking thread: under 16 clients' orders the command API
/// held 24 connections (each with its page cache) and 38 threads (each
/// with its allocator arena), 97 MiB. Reads are short and use the CPU, so
/// more at once than [`max_readers`] gains nothing: the others wait their
/// turn.
#[derive(Clone)]
pub(super) struct ReaderPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    turns: Arc<Semaphore>,
    reads: Arc<AtomicU64>,
}

/// How many reads run at once: two per core, at least four.
pub(super) fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| (cores.get() * 2).max(4))
}

impl ReaderPool {
    pub(super) fn new(path: PathBuf, readers: usize) -> Self {
        Self {
            path,
            idle: Arc::default(),
            turns: Arc::new(Semaphore::new(readers.max(1))),
            reads: Arc::default(),
        }
    }

    /// Runs `read` on a pooled connection on the blocking thread pool, once
    /// it is its turn.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let turn = Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::unavailable("waiting for a read connection", e))?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let connection = pool.take()?;
            let result = read(&connection);
            pool.give_back(connection);
            result
        })
        .await
        .map_err(|e| StoreError::unavailable("running a read", e))?
    }

    /// How many reads were asked of the pool since it was made.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many connections the pool has opened and holds idle now.
    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.lock().len()
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Twenty reads at once on a pool of three: never more than three run
    /// together, and three connections are all it opens.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_reads_run_at_once_than_the_pool_allows() {
        let folder = tempfile::tempdir().unwrap();
        let pool = ReaderPool::new(folder.path().join("events.db"), 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..20).map(|_| {
            let (pool, running, most) = (pool.clone(), Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(async move {
                pool.run(move |connection| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let one: i64 = connection.query_row("SELECT 1", [], |row| row.get(0)).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(one)
                })
                .await
            })
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap().unwrap(), 1);
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "reads at once");
        assert_eq!(pool.idle(), 3, "connections opened");
    }
}
