//! One projectors instance: its id (the holder of its claims, the
//! `parkedBy` of what it parks) and what it knows of each projection it
//! runs, which its readiness reports (`admin/ready.rs`): whether it holds
//! the projection now, how far it has got, whether it is stuck retrying an
//! event it cannot read, whether its task ended, and since when it has
//! been behind the log head (`api_common::lag`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use api_common::lag::{self, Behind};
use event_store::Position;
use tokio::sync::watch;

/// How long a projection may stay behind the log head continuously before
/// the instance running it answers not ready, when `SUBSCRIBER_LAG_LIMIT_MS`
/// is unset.
pub const DEFAULT_LAG_LIMIT: Duration = Duration::from_secs(30);

/// An instance's id and its projections' states.
pub struct Instance {
    id: String,
    lag_limit: Duration,
    subscribers: Mutex<BTreeMap<&'static str, Arc<Subscriber>>>,
}

impl Default for Instance {
    fn default() -> Self {
        Self::new(DEFAULT_LAG_LIMIT)
    }
}

impl Instance {
    /// A new instance, with a fresh id (`<pid>-<random>`), unready when a
    /// projection it runs stays behind the log head longer than `lag_limit`.
    pub fn new(lag_limit: Duration) -> Self {
        Self {
            id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            lag_limit,
            subscribers: Mutex::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn lag_limit(&self) -> Duration {
        self.lag_limit
    }

    /// Adds the projection `name`, whose progress `progress` follows.
    pub fn register(&self, name: &'static str, progress: watch::Receiver<Option<Position>>) -> Arc<Subscriber> {
        let subscriber = Arc::new(Subscriber {
            name,
            progress,
            state: Mutex::default(),
            behind: Mutex::default(),
        });
        lock(&self.subscribers).insert(name, Arc::clone(&subscriber));
        subscriber
    }

    /// Every projection this instance has started, by name.
    pub fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        lock(&self.subscribers).values().cloned().collect()
    }
}

/// One projection as its instance runs it.
pub struct Subscriber {
    name: &'static str,
    progress: watch::Receiver<Option<Position>>,
    state: Mutex<SubscriberState>,
    /// Since when readiness has seen it behind, reset when it is seen
    /// caught up. Not when its task restarts: one that keeps failing and
    /// restarting does not move, and lags.
    behind: Mutex<Option<Behind<Position>>>,
}

/// Where a projection stands in its instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberState {
    /// The instance holds its claim and runs it.
    pub held: bool,
    /// It is retrying an event it could not read (not yet parked).
    pub stalled: Option<Stall>,
    /// Its task ended without a shutdown (it no longer runs here).
    pub ended: bool,
}

/// An event a projection failed to read and will try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub position: Position,
    /// The attempts that failed so far.
    pub attempts: u32,
    pub error: String,
}

impl Subscriber {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The position of the last event it applied.
    pub fn applied(&self) -> Option<Position> {
        *self.progress.borrow()
    }

    pub fn state(&self) -> SubscriberState {
        lock(&self.state).clone()
    }

    /// Records a look at it at `now`: `pending` is its oldest event not
    /// applied (`None` when caught up), `head` the log's. How long it has
    /// been behind continuously; zero when caught up.
    pub fn observe_lag(&self, pending: Option<Position>, head: Option<Position>, now: Instant) -> Duration {
        let mut behind = lock(&self.behind);
        *behind = lag::observe(*behind, pending, head, now);
        behind.map_or(Duration::ZERO, |behind| behind.for_how_long(now))
    }

    pub fn set_held(&self, held: bool) {
        let mut state = lock(&self.state);
        state.held = held;
        if !held {
            state.stalled = None;
        }
    }

    pub fn set_stalled(&self, stall: Option<Stall>) {
        lock(&self.state).stalled = stall;
    }

    pub fn set_ended(&self) {
        let mut state = lock(&self.state);
        state.ended = true;
        state.held = false;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
