//! Readiness of an instance's projections: not ready while one it runs is
//! stalled (retrying an event it cannot read, or its task ended) or lags
//! the log head for longer than the limit (`SUBSCRIBER_LAG_LIMIT_MS`), so
//! an orchestrator stops routing to an instance whose views do not move.
//! Parked events alone do not make it unready: they are counted and listed.

use std::time::Duration;

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

/// `Err` when `subscriber` has been behind `head` for longer than `limit`:
/// when the oldest event it has not applied was recorded longer ago than
/// that (the store's clock against this one), so an instance that keeps
/// a little behind a busy log stays ready.
async fn lag(store: &dyn EventStore, subscriber: &Subscriber, head: Position, limit: Duration) -> Result<(), String> {
    let applied = subscriber.applied();
    if applied >= Some(head) {
        return Ok(());
    }
    let oldest = store
        .read_all(applied, 1, &StreamFilter::all())
        .await
        .map_err(|e| format!("event store unavailable: {e}"))?;
    let Some(oldest) = oldest.first() else {
        return Ok(());
    };
    let behind = (chrono::Utc::now() - oldest.recorded_at).to_std().unwrap_or_default();
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
