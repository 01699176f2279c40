//! Recorded events to the domain events the saga reads.

use domain::event::{DecodeError, DomainEvent};
use domain::order::OrderEvent;
use domain::order_saga::SagaEvent;
use domain::product::ProductEvent;
use event_store::RecordedEvent;

pub(super) enum Decoded {
    Order(OrderEvent),
    Product(ProductEvent),
}

impl Decoded {
    pub(super) fn as_saga_event(&self) -> SagaEvent<'_> {
        match self {
            Self::Order(event) => SagaEvent::Order(event),
            Self::Product(event) => SagaEvent::Product(event),
        }
    }
}

/// The domain event of a recorded event; `None` for an event type this build
/// does not know or a stream that is neither an order's nor a product's,
/// which the saga passes over. An error makes the event a poison candidate.
pub(super) fn decode(recorded: &RecordedEvent) -> Result<Option<Decoded>, DecodeError> {
    let (event_type, version, data) = (&recorded.event_type, recorded.metadata.schema_version, &recorded.data);
    if OrderEvent::id_in_stream(&recorded.stream).is_some() {
        OrderEvent::decode_known(event_type, version, data).map(|event| event.map(Decoded::Order))
    } else if ProductEvent::id_in_stream(&recorded.stream).is_some() {
        ProductEvent::decode_known(event_type, version, data).map(|event| event.map(Decoded::Product))
    } else {
        Ok(None)
    }
}
