//! Whether this process's saga keeps up, for `/health/ready`: an
//! orchestrator stops routing to a replica whose saga is stalled (retrying
//! the same event, or its task ended) or lagging (behind the log head
//! continuously for longer than `SUBSCRIBER_LAG_LIMIT_MS`, counted from when
//! readiness first saw it behind, `api_common::lag`: a saga resuming from an
//! old checkpoint has been behind for no time and is moving). Parked events
//! alone do not make it unready: they are counted and listed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_common::lag::{self, Behind};
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
    /// Since when readiness has seen it behind; reset when it is seen
    /// caught up. Not when a runner starts again: one that keeps failing
    /// and restarting does not move, and lags.
    behind: Option<Behind<Position>>,
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
        let pending = next.first().map(|event| event.position);
        let head = match pending {
            Some(_) => store
                .head()
                .await
                .map_err(|e| format!("event store unavailable: {e}"))?,
            None => None,
        };
        let now = Instant::now();
        let behind = {
            let mut state = self.state();
            state.behind = lag::observe(state.behind, pending, head, now);
            state.behind.map_or(Duration::ZERO, |behind| behind.for_how_long(now))
        };
        match pending {
            Some(pending) if behind > self.lag_limit => Err(format!(
                "subscriber saga is lagging: behind the log head for {} ms (limit {} ms), its oldest unhandled event at {pending}",
                behind.as_millis(),
                self.lag_limit.as_millis()
            )),
            _ => Ok(()),
        }
    }
}

/// Marks the saga ended when the supervising task stops, however it stops.
pub(super) struct EndGuard(pub(super) Arc<SagaHealth>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.ended();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use event_store::sqlite::SqliteEventStore;
    use event_store::{EventMetadata, ExpectedRevision, NewEvent, StreamFilter, StreamName};

    use super::*;

    const LIMIT: Duration = Duration::from_millis(300);

    async fn append(store: &dyn EventStore) -> Position {
        let event = NewEvent {
            id: uuid::Uuid::new_v4(),
            event_type: "Noticed".to_owned(),
            data: b"{}".to_vec(),
            metadata: EventMetadata {
                correlation_id: uuid::Uuid::new_v4(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
        };
        let stream = StreamName::new("lag-1").unwrap();
        store
            .append(&stream, ExpectedRevision::Any, vec![event])
            .await
            .unwrap()
            .position
    }

    /// A saga resuming from an old checkpoint, behind events older than the
    /// limit, has been behind for no time: ready; behind for longer than
    /// the limit from then: lagging; caught up: ready again.
    #[tokio::test]
    async fn a_saga_resuming_behind_an_old_log_is_ready_until_it_stays_behind_past_the_limit() {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(folder.path().join("events.db")).unwrap();
        let all = StreamFilter::all();
        append(&store).await;
        let head = append(&store).await;
        // Not synchronisation: the log must be older than the limit.
        tokio::time::sleep(LIMIT + Duration::from_millis(100)).await;
        let health = SagaHealth::new(LIMIT);
        health.started(None);
        assert_eq!(health.check(&store, &all).await, Ok(()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let lagging = loop {
            match health.check(&store, &all).await {
                Err(lagging) => break lagging,
                Ok(()) => assert!(Instant::now() < deadline, "never lagging"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(lagging.contains("subscriber saga is lagging"), "{lagging}");
        assert!(lagging.contains("limit 300 ms"), "{lagging}");
        health.handled(Some(head));
        assert_eq!(health.check(&store, &all).await, Ok(()));
    }
}
