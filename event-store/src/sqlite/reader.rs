//! Read connections on threads of their own, each thread holding its
//! connection across reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// A read for a reader thread, with the thread's connection (or why it
/// could not be opened).
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) + Send>;

/// A few threads, each with its own read connection, taking reads from one
/// queue. WAL lets them read while the writer writes; each sees the log as
/// of its last committed transaction.
///
/// Reads are short and use the CPU, so more at once than [`max_readers`]
/// gains nothing: the others wait in the queue. Before, each read was a
/// task on tokio's blocking pool: under 64 clients' orders the pool's lock,
/// its condition variable and its task allocations were a tenth of the
/// command API's time. Without any bound, each concurrent read opened a
/// connection (with its page cache) and took a thread (with its allocator
/// arena): 24 connections and 38 threads, 97 MiB, under 16 clients.
///
/// The threads end when the last clone of the pool is dropped.
#[derive(Clone)]
pub(super) struct ReaderPool {
    jobs: flume::Sender<Job>,
    reads: Arc<AtomicU64>,
}

/// How many reads run at once: two per core, at least four.
pub(super) fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| (cores.get() * 2).max(4))
}

impl ReaderPool {
    /// Starts `readers` threads (at least one) reading the store at `path`;
    /// each opens its connection on its first read.
    pub(super) fn new(path: PathBuf, readers: usize) -> Result<Self, StoreError> {
        let (jobs, queue) = flume::unbounded::<Job>();
        for n in 0..readers.max(1) {
            let (queue, path) = (queue.clone(), path.clone());
            std::thread::Builder::new()
                .name(format!("event-store-reader-{n}"))
                .spawn(move || read_until_closed(&path, &queue))
                .map_err(|e| StoreError::unavailable("starting an event store reader", e))?;
        }
        Ok(Self {
            jobs,
            reads: Arc::default(),
        })
    }

    /// Runs `read` on a reader thread's connection, once one is free.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(connection.and_then(read));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answered
            .await
            .map_err(|e| StoreError::unavailable("a reader dropped its read", e))?
    }

    /// How many reads were asked of the pool since it was made.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// A reader thread: takes reads until every sender is gone. Its connection
/// is opened on the first read, opened again on the next read after it could
/// not be, and dropped after a read that panicked (which may have left a
/// statement or a transaction open): the panic takes only that read down,
/// its caller hears that it was dropped.
fn read_until_closed(path: &Path, queue: &flume::Receiver<Job>) {
    let mut connection: Option<Connection> = None;
    while let Ok(job) = queue.recv() {
        let opened = match connection.take() {
            Some(open) => Ok(open),
            None => super::schema::open_connection(path),
        };
        match opened {
            Ok(open) => {
                let read = std::panic::AssertUnwindSafe(|| job(Ok(&open)));
                if std::panic::catch_unwind(read).is_ok() {
                    connection = Some(open);
                }
            }
            Err(error) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Err(error))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    fn one(connection: &Connection) -> Result<i64, StoreError> {
        connection
            .query_row("SELECT 1", [], |row| row.get(0))
            .map_err(|e| StoreError::unavailable("selecting 1", e))
    }

    /// Twenty reads at once on a pool of three: never more than three run
    /// together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_reads_run_at_once_than_the_pool_has_readers() {
        let folder = tempfile::tempdir().unwrap();
        // The store turns WAL on before its readers start: readers that
        // find a new file all turn it on at once, and one of them may find
        // the file locked.
        super::super::schema::open_connection(&folder.path().join("events.db")).unwrap();
        let pool = ReaderPool::new(folder.path().join("events.db"), 3).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..20).map(|_| {
            let (pool, running, most) = (pool.clone(), Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(async move {
                pool.run(move |connection| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    one(connection)
                })
                .await
            })
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap().unwrap(), 1);
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "reads at once");
        assert_eq!(pool.reads(), 20);
    }

    /// A read that panics is answered as dropped, and the one reader goes on
    /// to the next read with a fresh connection.
    #[tokio::test]
    async fn a_read_that_panics_takes_only_itself_down() {
        let folder = tempfile::tempdir().unwrap();
        let pool = ReaderPool::new(folder.path().join("events.db"), 1).unwrap();
        let panicked = pool
            .run(|_| -> Result<i64, StoreError> { panic!("a bug in a read") })
            .await;
        assert!(matches!(panicked, Err(StoreError::Unavailable { .. })), "{panicked:?}");
        assert_eq!(pool.run(one).await.unwrap(), 1);
    }

    /// A store whose file cannot be opened answers each read with why, and
    /// reads once the file can be opened.
    #[tokio::test]
    async fn a_connection_that_cannot_be_opened_fails_the_read_not_the_reader() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("not-yet");
        let pool = ReaderPool::new(missing.join("events.db"), 1).unwrap();
        let failed = pool.run(one).await;
        assert!(matches!(failed, Err(StoreError::Unavailable { .. })), "{failed:?}");
        std::fs::create_dir(&missing).unwrap();
        assert_eq!(pool.run(one).await.unwrap(), 1);
    }
}
