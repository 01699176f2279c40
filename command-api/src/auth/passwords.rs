//! Password hashing off the async threads and bounded: one hashing thread
//! per core, each reusing its argon2id working memory, and at most
//! `PASSWORD_HASH_QUEUE` hashes waiting for them.

use std::sync::Arc;

use domain::account::{Password, PasswordHash};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use super::argon2id::{HashFailed, Hasher};

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// As many hashes as the queue holds are waiting: try again later.
    #[error("password hashing is at capacity: {0} hashes already wait")]
    Busy(usize),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<HashFailed> for HashingError {
    fn from(error: HashFailed) -> Self {
        Self::Failed(error.to_string())
    }
}

/// A piece of work for a hashing thread, with the thread's hasher.
type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

/// Hashes and verifies passwords on `parallelism` threads of their own,
/// with at most `queue` more jobs waiting: past that a caller is refused at
/// once ([`HashingError::Busy`]), so a burst of logins neither starves the
/// server nor waits without end. A job whose caller stopped waiting before
/// a thread took it (a client that went away) is skipped; one under way
/// runs to its end. The threads end when the last clone is dropped.
///
/// The bound counts jobs, not places in the channel: a job holds one of
/// `parallelism + queue` permits from the moment it is accepted until it
/// is done or skipped. (A channel bounded to `queue` would refuse a job
/// while a thread is between two jobs, and with a queue of 0 take one only
/// while a thread is already waiting.)
#[derive(Clone)]
pub struct Passwords {
    jobs: flume::Sender<Job>,
    permits: Arc<Semaphore>,
    queue: usize,
    /// A real hash of a random password: unknown users are verified against
    /// it, so "no such user" costs what "wrong password" costs.
    dummy: Arc<PasswordHash>,
    /// The threads' end of the channel, for tests to count the threads.
    #[cfg(test)]
    waiting: flume::Receiver<Job>,
}

impl Passwords {
    /// One hashing thread per core, with at most `queue` jobs waiting.
    pub fn new(queue: usize) -> Result<Self, HashingError> {
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_parallelism(parallelism, queue)
    }

    pub fn with_parallelism(parallelism: usize, queue: usize) -> Result<Self, HashingError> {
        let parallelism = parallelism.max(1);
        let (jobs, waiting) = flume::unbounded::<Job>();
        for n in 0..parallelism {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("password-hasher-{n}"))
                .spawn(move || work(&waiting))
                .map_err(|e| HashingError::Failed(format!("starting a hashing thread: {e}")))?;
        }
        let random =
            Password::parse(&uuid::Uuid::new_v4().to_string()).map_err(|e| HashingError::Failed(e.to_string()))?;
        Ok(Self {
            jobs,
            permits: Arc::new(Semaphore::new(parallelism + queue)),
            queue,
            dummy: Arc::new(Hasher::default().hash(&random)?),
            #[cfg(test)]
            waiting,
        })
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError> {
        Ok(self.run(move |hasher| hasher.hash(&password)).await??)
    }

    /// Checks `password` against `hash`, or against the dummy hash when
    /// there is no user, so both answers take the same time.
    pub async fn verify(&self, password: String, hash: Option<PasswordHash>) -> Result<bool, HashingError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| (*self.dummy).clone());
        let matches = self.run(move |hasher| hasher.verify(&password, &hash)).await?;
        Ok(known && matches)
    }

    /// Queues `work` for a hashing thread and waits for its answer.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Hasher) -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit = self.permit()?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            if answer.is_closed() {
                return;
            }
            let done = work(hasher);
            // Given back before the answer, so that a caller who hashes
            // again as soon as it is answered finds the permit free.
            drop(permit);
            let _ = answer.send(done);
        });
        self.jobs
            .send(job)
            .map_err(|_| HashingError::Failed("the hashing threads stopped".to_owned()))?;
        answered
            .await
            .map_err(|_| HashingError::Failed("a hashing thread dropped its job".to_owned()))
    }

    /// A permit for one more job, or [`HashingError::Busy`] when as many
    /// jobs as the threads run and the queue holds are already accepted.
    fn permit(&self) -> Result<OwnedSemaphorePermit, HashingError> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|error| match error {
                TryAcquireError::NoPermits => {
                    metrics::counter!("auth_hash_queue_full_total").increment(1);
                    HashingError::Busy(self.queue)
                }
                TryAcquireError::Closed => HashingError::Failed("the hashing permits are closed".to_owned()),
            })
    }
}

/// A hashing thread: takes jobs until every sender is gone, keeping its
/// working memory while more jobs wait and giving it back when none do.
fn work(waiting: &flume::Receiver<Job>) {
    let mut hasher = Hasher::default();
    loop {
        let job = match waiting.try_recv() {
            Ok(job) => job,
            Err(flume::TryRecvError::Disconnected) => return,
            Err(flume::TryRecvError::Empty) => {
                hasher.release();
                match waiting.recv() {
                    Ok(job) => job,
                    Err(flume::RecvError::Disconnected) => return,
                }
            }
        };
        // A job that panics takes only itself down: its caller hears that
        // the job was dropped, and the thread goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut hasher)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let passwords = Passwords::new(4).unwrap();
        let hash = passwords.hash(Password::parse("correct horse").unwrap()).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify("correct horse".to_owned(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse".to_owned(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::new(4).unwrap();
        assert!(!passwords.verify("anything at all".to_owned(), None).await.unwrap());
    }

    /// Unknown users are checked against the dummy hash: it must cost what
    /// a real one costs, so it is made with the same parameters.
    #[tokio::test]
    async fn the_dummy_hash_has_the_parameters_of_a_real_one() {
        let passwords = Passwords::new(4).unwrap();
        let real = passwords.hash(Password::parse("correct horse").unwrap()).await.unwrap();
        let parameters = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(parameters(passwords.dummy.as_phc()), parameters(real.as_phc()));
        assert!(passwords.dummy.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    /// With no queue, a caller that hashes again as soon as it is answered
    /// (start-up verifies the administrator's password, then hashes the new
    /// one) finds the thread free: the bound counts jobs, and a job gives
    /// its permit back before it answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_no_queue_one_caller_after_another_is_never_refused() {
        let passwords = Passwords::with_parallelism(1, 0).unwrap();
        for n in 0..2_000 {
            let answered = passwords.run(|_| ()).await;
            assert!(answered.is_ok(), "job {n}: {answered:?}");
        }
    }

    /// The threads end with the last clone: nothing is left running.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_threads_end_when_the_last_clone_is_dropped() {
        let passwords = Passwords::with_parallelism(3, 4).unwrap();
        let waiting = passwords.waiting.clone();
        assert_eq!(waiting.receiver_count(), 5, "three threads, the field and this test");
        let clone = passwords.clone();
        drop(passwords);
        assert!(!clone.verify("x".to_owned(), None).await.unwrap());
        drop(clone);
        until(|| waiting.receiver_count() == 1).await;
    }

    /// A job that holds its hashing thread until the test opens its gate,
    /// and says when it started.
    fn gated(
        passwords: &Passwords,
    ) -> (
        tokio::task::JoinHandle<()>,
        Arc<AtomicBool>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(AtomicBool::new(false));
        let passwords = passwords.clone();
        let flag = Arc::clone(&started);
        let job = tokio::spawn(async move {
            passwords
                .run(move |_| {
                    flag.store(true, Ordering::SeqCst);
                    let _ = gate.recv();
                })
                .await
                .unwrap();
        });
        (job, started, open)
    }

    /// Polls `condition` until it holds, for at most ten seconds.
    async fn until(condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "the condition never held");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_bound_a_hash_is_refused_at_once() {
        let passwords = Passwords::with_parallelism(1, 1).unwrap();
        let (_running, started, open_running) = gated(&passwords);
        until(|| started.load(Ordering::SeqCst)).await;
        let (waiting, waiting_started, open_waiting) = gated(&passwords);
        until(|| passwords.jobs.len() == 1).await;
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            passwords.verify("x".to_owned(), None),
        )
        .await
        .expect("refused at once, not queued");
        assert!(matches!(refused, Err(HashingError::Busy(1))), "{refused:?}");
        open_running.send(()).unwrap();
        until(|| waiting_started.load(Ordering::SeqCst)).await;
        open_waiting.send(()).unwrap();
        waiting.await.unwrap();
        assert!(
            !passwords.verify("x".to_owned(), None).await.unwrap(),
            "the queue is free again"
        );
    }

    /// A caller that stops waiting (a client that went away) leaves its
    /// hash running, and the thread stays taken until that hash is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_caller_keeps_its_thread_until_its_hash_is_done() {
        let passwords = Passwords::with_parallelism(1, 4).unwrap();
        let (abandoned, started, open_abandoned) = gated(&passwords);
        until(|| started.load(Ordering::SeqCst)).await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        let (next, next_started, open_next) = gated(&passwords);
        until(|| next_started.load(Ordering::SeqCst) || passwords.jobs.len() == 1).await;
        assert!(
            !next_started.load(Ordering::SeqCst),
            "the next hash started while the abandoned one still ran"
        );
        open_abandoned.send(()).unwrap();
        until(|| next_started.load(Ordering::SeqCst)).await;
        open_next.send(()).unwrap();
        next.await.unwrap();
    }

    /// A job whose caller went away while it waited in the queue is not
    /// hashed: the thread goes on to the next.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_caller_left_while_it_waited_is_skipped() {
        let passwords = Passwords::with_parallelism(1, 4).unwrap();
        let (running, started, open_running) = gated(&passwords);
        until(|| started.load(Ordering::SeqCst)).await;
        let (left, left_started, _never_opened) = gated(&passwords);
        until(|| passwords.jobs.len() == 1).await;
        left.abort();
        assert!(left.await.unwrap_err().is_cancelled());
        open_running.send(()).unwrap();
        running.await.unwrap();
        let after = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            passwords.verify("x".to_owned(), None),
        )
        .await
        .expect("the job after it ran: the left one did not hold the thread");
        assert!(!after.unwrap());
        assert!(!left_started.load(Ordering::SeqCst), "the left job was hashed");
    }

    /// A job that panics is answered as failed, and its thread goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_fails_alone() {
        let passwords = Passwords::with_parallelism(1, 4).unwrap();
        let failed = passwords.run::<()>(|_| panic!("a job that panics")).await;
        assert!(matches!(failed, Err(HashingError::Failed(_))), "{failed:?}");
        assert!(!passwords.verify("x".to_owned(), None).await.unwrap());
    }
}
