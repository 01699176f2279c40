//! Whether this process's saga keeps up, for `/health/ready`: an
//! orchestrator stops routing to a replica whose saga is stalled (retrying
//! the same event, or its task ended) or lagging (its oldest unhandled event
//! was recorded longer ago than `SUBSCRIBER_LAG_LIMIT_MS`). Parked events
//! alone do not make it unready: they are counted and listed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_store::{EventStore, Position};

/// The saga's state as its runner reports it.
#[derive(Debug, Default)]
struct State {
    /// A runner has loaded its checkpoint.
    started: bool,
    /// The supervising task is gone.
    ended: bool,
    /// The last position handled (or passed over).
    handled: Option<Position>,
    /// The event being retried, how many times it failed, and why.
    stalled: Option<(Position, u32, String)>,
}

pub struct SagaHealth {
    state: Mutex<State>,
    lag_limit: Duration,
}

impl SagaHealth {
    pub fn new(lag_limit: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            lag_limit,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn started(&self, resume: Option<Position>) {
        let mut state = self.state();
        state.started = true;
        state.handled = resume;
    }

    /// Everything up to `position` is handled: a stall before it is over.
    pub(super) fn handled(&self, position: Option<Position>) {
        let mut state = self.state();
        state.handled = position;
        if let (Some((at, _, _)), Some(handled)) = (&state.stalled, position)
            && handled >= *at
        {
            state.stalled = None;
        }
    }

    pub(super) fn stalled(&self, position: Position, attempts: u32, error: String) {
        self.state().stalled = Some((position, attempts, error));
    }

    /// The event it was retrying is parked: processing goes on.
    pub(super) fn unstalled(&self) {
        self.state().stalled = None;
    }

    pub(super) fn ended(&self) {
        self.state().ended = true;
    }

    /// `Ok` while the saga keeps up; otherwise why not, naming it.
    pub async fn check(&self, store: &dyn EventStore, filter: &event_store::StreamFilter) -> Result<(), String> {
        let handled = {
            let state = self.state();
            if state.ended {
                return Err("subscriber saga: its task ended".to_owned());
            }
            if let Some((position, attempts, error)) = &state.stalled {
                return Err(format!(
                    "subscriber saga is stalled: the event at {position} failed {attempts} time(s) and is being retried: {error}"
                ));
            }
            if !state.started {
                return Ok(());
            }
            state.handled
        };
        let next = store
            .read_all(handled, 1, filter)
            .await
            .map_err(|e| format!("event store unavailable: {e}"))?;
        let Some(oldest) = next.first() else { return Ok(()) };
        let behind = (chrono::Utc::now() - oldest.recorded_at).to_std().unwrap_or_default();
        if behind > self.lag_limit {
            return Err(format!(
                "subscriber saga is lagging: its oldest unhandled event, at {}, was recorded {} ms ago (limit {} ms)",
                oldest.position,
                behind.as_millis(),
                self.lag_limit.as_millis()
            ));
        }
        Ok(())
    }
}

/// Marks the saga ended when the supervising task stops, however it stops.
pub(super) struct EndGuard(pub(super) Arc<SagaHealth>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.ended();
    }
}
