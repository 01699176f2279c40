//! Wakes requests waiting for the saga to decide their order.
//!
//! One subscription per process follows the `order-` streams; a request
//! registers its interest before it places the order, and is woken when a
//! confirmation or rejection of that order is committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::event::DomainEvent;
use domain::ids::OrderId;
use domain::order::OrderEvent;
use event_store::{EventStore, Position, RecordedEvent, StreamFilter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct OrderOutcomes {
    waiting: Mutex<HashMap<OrderId, Arc<Notify>>>,
}

/// Interest in one order's decision; dropping it withdraws the interest.
pub struct Waiter<'a> {
    outcomes: &'a OrderOutcomes,
    order_id: OrderId,
    notify: Arc<Notify>,
}

impl Waiter<'_> {
    /// Returns once the order is decided (possibly before this call).
    pub async fn decided(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiting = self.outcomes.lock();
        if waiting.get(&self.order_id).is_some_and(|n| Arc::strong_count(n) <= 2) {
            waiting.remove(&self.order_id);
        }
    }
}

impl OrderOutcomes {
    /// Follows the log from its current head until `shutdown`.
    pub async fn start(store: Arc<dyn EventStore>, shutdown: CancellationToken) -> Arc<Self> {
        let outcomes = Arc::new(Self::default());
        let follower = Arc::clone(&outcomes);
        let start = store.head().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the log head; following order decisions from the start");
            None
        });
        tokio::spawn(async move {
            tokio::select! {
                () = follower.follow(store, start) => {}
                () = shutdown.cancelled() => {}
            }
        });
        outcomes
    }

    pub fn watch(&self, order_id: OrderId) -> Waiter<'_> {
        let notify = Arc::clone(self.lock().entry(order_id).or_default());
        Waiter {
            outcomes: self,
            order_id,
            notify,
        }
    }

    async fn follow(&self, store: Arc<dyn EventStore>, mut after: Option<Position>) {
        loop {
            let mut decisions = store.subscribe_all(after, StreamFilter::prefixes([OrderEvent::stream_prefix()]));
            while let Some(next) = decisions.next().await {
                match next {
                    Ok(event) => {
                        after = Some(event.position);
                        if is_decision(&event) {
                            self.wake(&event.stream);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "following order decisions failed; resubscribing");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn wake(&self, stream: &str) {
        let order_id = OrderEvent::id_in_stream(stream).and_then(|id| id.parse::<OrderId>().ok());
        if let Some(notify) = order_id.and_then(|id| self.lock().get(&id).cloned()) {
            // notify_one stores a permit, so a waiter that is not waiting
            // yet still returns at once.
            notify.notify_one();
            notify.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A confirmation, a rejection or a refusal: what a waiting request waits
/// for. An event this build cannot read wakes nobody; the request reads
/// the order again when its wait ends.
///
/// Other order events are passed over by their type, undecoded: decoding
/// every placement here cost the command API 3% of its CPU under load (#15).
fn is_decision(event: &RecordedEvent) -> bool {
    OrderEvent::DECISION_TYPES.contains(&event.event_type.as_str())
        && OrderEvent::decode_known(&event.event_type, event.metadata.schema_version, &event.data)
            .is_ok_and(|decoded| decoded.is_some_and(|event| event.is_decision()))
}
