//! Picking a held-back order up again once its last parked event is
//! resolved (retried with success, or skipped): its events from where the
//! park said (before its placement while it was being reserved, else just
//! before the parked event) up to the resolution are read from the log and
//! stepped as if they had just come; the rest come through the
//! subscription. Every command is idempotent in its aggregate, so what was
//! done before the park is not done twice.

use event_store::{EventStore, Position, StreamFilter};

use super::decode::{Decoded, decode};
use super::parked::{ParkedEvent, ParkedList};
use super::poison::{Culprits, concerned_order};
use super::progress::{Caused, Progress};
use super::{SagaError, saga_filter};

/// Events read at a time.
const PAGE: usize = 500;

/// The commands that follow from stepping the events of `parked`'s order
/// logged before `until` (the resolution), noting each as a culprit should
/// one fail again.
pub(super) async fn redrive(
    store: &dyn EventStore,
    progress: &mut Progress,
    list: &ParkedList,
    parked: &ParkedEvent,
    until: Position,
    culprits: &mut Culprits,
) -> Result<Vec<Caused>, SagaError> {
    let Some(order) = parked.order_id else {
        return Ok(Vec::new());
    };
    tracing::info!(%order, parked = %parked.position, "picking up an order held back by a parked event");
    progress.forget(order);
    let resume = parked.replay_from_start.then_some(parked.replay_after);
    let filter: StreamFilter = saga_filter(false);
    let mut after = parked.replay_after;
    let mut commands = Vec::new();
    loop {
        let page = store.read_all(after, PAGE, &filter).await?;
        for recorded in &page {
            if recorded.position >= until {
                return Ok(commands);
            }
            after = Some(recorded.position);
            if list.passes_over(recorded.position) || concerned_order(recorded) != Some(order) {
                continue;
            }
            culprits.note(recorded, parked.replay_after, parked.replay_from_start);
            let event = decode(recorded).map_err(|error| culprits.poison(recorded.id, &error))?;
            if let Some(event) = event.as_ref().map(Decoded::as_saga_event) {
                commands.extend(progress.replayed(recorded, event, resume));
            }
        }
        if page.len() < PAGE {
            return Ok(commands);
        }
    }
}
