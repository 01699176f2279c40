//! Poison events: which failures an event causes deterministically (it
//! cannot be decoded, or a command it causes is refused, or meets an order
//! stream this build cannot read) and which are outages (the store
//! unreachable, contention), retried for ever and never parked; and the
//! event at fault, with the order it concerns.

use std::collections::HashMap;
use std::error::Error;

use api_common::problem::ErrorChain;
use domain::event::{DecodeError, DomainEvent};
use domain::ids::OrderId;
use domain::order::{OrderError, OrderEvent};
use domain::product::{ProductError, ProductEvent};
use event_store::{Position, RecordedEvent, StoreError};
use uuid::Uuid;

use super::SagaError;
use crate::aggregates::CommandError;

/// The event at fault, and where its order's events are read again from
/// once it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    pub position: Position,
    pub stream: String,
    pub revision: u64,
    pub event_type: String,
    pub order_id: Option<OrderId>,
    pub replay_after: Option<Position>,
    pub replay_from_start: bool,
}

impl Culprit {
    /// `recorded`, concerning `order_id` ([`concerned_order`]), whose
    /// order's events are read again after `replay_after` (from nothing
    /// known of the order when `replay_from_start`).
    pub(super) fn of(
        recorded: &RecordedEvent,
        order_id: Option<OrderId>,
        replay_after: Option<Position>,
        replay_from_start: bool,
    ) -> Self {
        Self {
            position: recorded.position,
            stream: recorded.stream.clone(),
            revision: recorded.revision,
            event_type: recorded.event_type.clone(),
            order_id,
            replay_after,
            replay_from_start,
        }
    }
}

/// The order an event concerns, read without decoding it (it may be the
/// event that cannot be decoded): an order stream's id, or a product
/// event's `orderId`.
pub(super) fn concerned_order(recorded: &RecordedEvent) -> Option<OrderId> {
    if let Some(id) = OrderEvent::id_in_stream(&recorded.stream) {
        return id.parse().ok();
    }
    ProductEvent::id_in_stream(&recorded.stream)?;
    let concerns: Concerns = serde_json::from_slice(&recorded.data).ok()?;
    concerns.order_id?.parse().ok()
}

/// The one field of a product event's payload [`concerned_order`] reads;
/// serde skips the others without building them.
#[derive(serde::Deserialize)]
struct Concerns<'a> {
    #[serde(rename = "orderId", borrow)]
    order_id: Option<std::borrow::Cow<'a, str>>,
}

/// The culprits of one batch by event id, for failures of the commands they
/// caused.
#[derive(Default)]
pub(super) struct Culprits(HashMap<Uuid, Culprit>);

impl Culprits {
    pub(super) fn note(
        &mut self,
        recorded: &RecordedEvent,
        order: Option<OrderId>,
        replay_after: Option<Position>,
        from_start: bool,
    ) {
        self.0
            .insert(recorded.id, Culprit::of(recorded, order, replay_after, from_start));
    }

    /// The event `event_id` (noted before) is poison: `error` is why.
    pub(super) fn poison(&self, event_id: Uuid, error: &(dyn Error + 'static)) -> SagaError {
        let culprit = self
            .0
            .get(&event_id)
            .cloned()
            .expect("a culprit is noted before it is decoded");
        SagaError::Poison {
            culprit: Box::new(culprit),
            error: ErrorChain(error).to_string(),
        }
    }

    /// A refused command becomes its causing event's poison (the order it
    /// concerns: the command's, if the event names none).
    pub(super) fn blame(&self, error: SagaError) -> SagaError {
        let SagaError::Refused {
            order_id,
            causation_id,
            source,
        } = error
        else {
            return error;
        };
        match causation_id.and_then(|id| self.0.get(&id)) {
            Some(culprit) => {
                let mut culprit = culprit.clone();
                culprit.order_id = culprit.order_id.or(Some(order_id));
                SagaError::Poison {
                    culprit: Box::new(culprit),
                    error: ErrorChain(source.as_ref()).to_string(),
                }
            }
            None => SagaError::Command(source),
        }
    }
}

/// A command's failure for `order_id`, caused by the event `causation_id`:
/// [`SagaError::Refused`] when it would fail again on every attempt.
pub(super) fn command_failed(
    source: Box<dyn Error + Send + Sync>,
    order_id: OrderId,
    causation_id: Option<Uuid>,
) -> SagaError {
    if is_deterministic(source.as_ref()) {
        SagaError::Refused {
            order_id,
            causation_id,
            source,
        }
    } else {
        SagaError::Command(source)
    }
}

/// Whether a command's failure would repeat on every attempt: a refusal
/// the saga does not expect, or a stored event this build cannot read.
/// Outages and contention are not.
pub(super) fn is_deterministic(error: &(dyn Error + Send + Sync + 'static)) -> bool {
    if let Some(error) = error.downcast_ref::<CommandError<ProductError>>() {
        return command_error_is_deterministic(error);
    }
    if let Some(error) = error.downcast_ref::<CommandError<OrderError>>() {
        return command_error_is_deterministic(error);
    }
    chain_is_deterministic(error)
}

fn command_error_is_deterministic<E: Error + 'static>(error: &CommandError<E>) -> bool {
    match error {
        CommandError::Refused(_) | CommandError::Invalid(_) => true,
        CommandError::Contention(_) | CommandError::Unavailable(_) => false,
        CommandError::Internal(cause) => chain_is_deterministic(cause.as_ref()),
    }
}

/// Whether a cause in `error`'s chain is an event that cannot be read or
/// written as it is.
fn chain_is_deterministic(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<DecodeError>() {
            return true;
        }
        if let Some(store) = error.downcast_ref::<StoreError>() {
            return matches!(
                store,
                StoreError::Corrupt { .. } | StoreError::InvalidEvent { .. } | StoreError::TooLarge { .. }
            );
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_not_poison_and_unreadable_events_are() {
        let down: CommandError<OrderError> = CommandError::Unavailable(StoreError::Closed);
        assert!(!is_deterministic(&down));
        let contention: CommandError<ProductError> = CommandError::Contention("product-1".to_owned());
        assert!(!is_deterministic(&contention));
        let unreadable: CommandError<OrderError> = CommandError::internal(DecodeError::UnknownType("X".to_owned()));
        assert!(is_deterministic(&unreadable));
        let refused: CommandError<ProductError> = CommandError::Refused(ProductError::NotFound);
        assert!(is_deterministic(&refused));
    }

    fn recorded(stream: &str, data: &str) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::now_v7(),
            stream: stream.to_owned(),
            revision: 0,
            position: Position::at(1),
            event_type: "StockReserved".to_owned(),
            data: data.as_bytes().to_vec(),
            metadata: event_store::EventMetadata {
                correlation_id: Uuid::now_v7(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_order_an_event_concerns_is_read_from_its_stream_or_its_order_id_without_decoding_it() {
        let order = OrderId::from_uuid(Uuid::now_v7());
        let of = |stream: &str, data: &str| concerned_order(&recorded(stream, data));
        assert_eq!(of(&format!("order-{order}"), "not json"), Some(order));
        let product = "product-1";
        let reserved = format!(r#"{{"lines": [{{"orderId": "x"}}], "orderId": "{order}", "at": 1}}"#);
        assert_eq!(of(product, &reserved), Some(order));
        // The id written with escapes, as any JSON writer may.
        let escaped = format!(r#"{{"orderId": "{}"}}"#, order.to_string().replace('-', "\\u002d"));
        assert_eq!(of(product, &escaped), Some(order));
        assert_eq!(of(product, r#"{"name": "Lamp"}"#), None);
        assert_eq!(of(product, r#"{"orderId": 7}"#), None);
        assert_eq!(of(product, r#"{"orderId": "not an id"}"#), None);
        assert_eq!(of(product, "not json"), None);
        assert_eq!(of("account-1", &reserved), None);
    }
}
