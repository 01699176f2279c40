//! Readiness of an instance's projections: not ready while one it runs is
//! stalled (retrying an event it cannot read, or its task ended) or has
//! been behind the log head continuously for longer than the limit
//! (`SUBSCRIBER_LAG_LIMIT_MS`, counted from when readiness first saw it
//! behind), so an orchestrator stops routing to an instance whose views
//! do not move.
//! Parked events alone do not make it unready: they are counted and listed.

use std::time::{Duration, Instant};

use event_store::{EventStore, Position, StreamFilter};

use crate::instance::{Instance, Subscriber};

/// `Ok` when every projection `instance` runs keeps up with the log;
/// otherwise which one does not, and why.
pub async fn projections_keep_up(store: &dyn EventStore, instance: &Instance) -> Result<(), String> {
    let mut head = None;
    for subscriber in instance.subscribers() {
        let state = subscriber.state();
        let name = subscriber.name();
        if state.ended {
            return Err(format!("projection {name} is stalled: its task ended"));
        }
        if !state.held {
            continue;
        }
        if let Some(stall) = state.stalled {
            return Err(format!(
                "projection {name} is stalled: retrying the event at position {} ({} attempts failed): {}",
                stall.position, stall.attempts, stall.error
            ));
        }
        if head.is_none() {
            head = Some(
                store
                    .head()
                    .await
                    .map_err(|e| format!("event store unavailable: {e}"))?,
            );
        }
        let Some(head) = head.flatten() else {
            continue;
        };
        lag(store, &subscriber, head, instance.lag_limit()).await?;
    }
    Ok(())
}

/// `Err` when `subscriber` has been behind the log head continuously for
/// longer than `limit`, counted from when readiness first saw it behind
/// (`api_common::lag`): one that starts behind an old log (a new views
/// database, a replay) has been behind for no time and is moving, and one
/// that keeps a little behind a busy log stays ready.
async fn lag(store: &dyn EventStore, subscriber: &Subscriber, head: Position, limit: Duration) -> Result<(), String> {
    let applied = subscriber.applied();
    let pending = if applied >= Some(head) {
        None
    } else {
        let oldest = store
            .read_all(applied, 1, &StreamFilter::all())
            .await
            .map_err(|e| format!("event store unavailable: {e}"))?;
        oldest.first().map(|event| event.position)
    };
    let behind = subscriber.observe_lag(pending, Some(head), Instant::now());
    if behind <= limit {
        return Ok(());
    }
    Err(format!(
        "projection {} is lagging: behind the log head for {} ms (limit {} ms), at position {}",
        subscriber.name(),
        behind.as_millis(),
        limit.as_millis(),
        applied.map_or("(none)".to_owned(), |p| p.to_string()),
    ))
}
