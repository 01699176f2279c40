//! Picking a held-back order up again once its last parked event is
//! resolved (retried with success, or skipped): its events from where the
//! park said (before its placement while it was being reserved, else just
//! before the parked event) up to the resolution are read from the log and
//! stepped as if they had just come; the rest come through the
//! subscription. Every command is idempotent in its aggregate, so what was
//! done before the park is not done twice.
//!
//! A retry rehearses the same replay, up to the parked event, and executes
//! what follows before it resolves the event (`super::admin`), so a command
//! still refused answers the retry instead of parking the event again.

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
    if let Some(order) = parked.order_id {
        tracing::info!(%order, parked = %parked.position, "picking up an order held back by a parked event");
    }
    let replay = Replay {
        parked,
        past_end: &|position| position >= until,
        passed_over: &|position| list.passes_over(position),
    };
    replay.commands(store, progress, culprits).await
}

/// For a retry of `parked`, still parked in `list`: the commands that
/// follow from stepping its order's events as [`redrive`] would once it is
/// resolved, up to and including the parked event itself.
pub(super) async fn rehearse(
    store: &dyn EventStore,
    progress: &mut Progress,
    list: &ParkedList,
    parked: &ParkedEvent,
    culprits: &mut Culprits,
) -> Result<Vec<Caused>, SagaError> {
    let replay = Replay {
        parked,
        past_end: &|position| position > parked.position,
        passed_over: &|position| position != parked.position && list.passes_over(position),
    };
    replay.commands(store, progress, culprits).await
}

/// Which of a parked order's logged events are stepped again.
struct Replay<'a> {
    parked: &'a ParkedEvent,
    /// Whether the replay ends at the event at this position.
    past_end: &'a (dyn Fn(Position) -> bool + Sync),
    /// Whether the event at this position is passed over (parked or
    /// skipped).
    passed_over: &'a (dyn Fn(Position) -> bool + Sync),
}

impl Replay<'_> {
    /// Steps the order's events from where the park said, noting each as
    /// a culprit, and returns the commands that follow.
    async fn commands(
        &self,
        store: &dyn EventStore,
        progress: &mut Progress,
        culprits: &mut Culprits,
    ) -> Result<Vec<Caused>, SagaError> {
        let parked = self.parked;
        let Some(order) = parked.order_id else {
            return Ok(Vec::new());
        };
        progress.forget(order);
        let resume = parked.replay_from_start.then_some(parked.replay_after);
        let filter: StreamFilter = saga_filter(false);
        let mut after = parked.replay_after;
        let mut commands = Vec::new();
        loop {
            let page = store.read_all(after, PAGE, &filter).await?;
            for recorded in &page {
                if (self.past_end)(recorded.position) {
                    return Ok(commands);
                }
                after = Some(recorded.position);
                if (self.passed_over)(recorded.position) || concerned_order(recorded) != Some(order) {
                    continue;
                }
                culprits.note(recorded, Some(order), parked.replay_after, parked.replay_from_start);
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
}
