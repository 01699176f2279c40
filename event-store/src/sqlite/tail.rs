//! The live tail: each commit's events, handed by the writer to the
//! subscribers of this process, so that a subscriber that has read
//! everything stored takes the next events from memory instead of reading
//! them back from the file (as EventStoreDB serves live subscriptions).

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{Position, RecordedEvent, StreamFilter};

/// Commits kept for subscribers that have not taken them yet. One that
/// falls further behind reads the file instead, so this bounds only the
/// memory held for slow subscribers, never what they get.
pub const CAPACITY: usize = 128;

/// The events of one commit of this process's writer, in log order.
#[derive(Debug)]
pub(super) struct Committed {
    /// The last position in the log before the commit (read inside its
    /// transaction, so it counts other processes' writes): the commit's
    /// events are all that follow it, up to the last of them.
    pub after: Option<Position>,
    /// At least one. An event that a stream's max count removes later in
    /// the same commit is here too, as it is for a subscriber that read it
    /// before the commit that removed it.
    pub events: Vec<RecordedEvent>,
}

pub(super) type Sender = broadcast::Sender<Arc<Committed>>;

pub(super) fn channel() -> Sender {
    broadcast::Sender::new(CAPACITY)
}

impl Committed {
    /// Whether the commit directly follows a log seen up to `seen`: then no
    /// event between them can be missing, and the commit's events after
    /// `seen` are all a subscriber needs.
    pub(super) fn follows(&self, seen: Option<Position>) -> bool {
        self.after <= seen
    }

    /// The log position the commit brings a subscriber to.
    pub(super) fn last(&self) -> Option<Position> {
        self.events.last().map(|event| event.position).or(self.after)
    }

    /// The commit's events past `seen` that `filter` lets through.
    pub(super) fn events_after<'a>(
        &'a self,
        seen: Option<Position>,
        filter: &'a StreamFilter,
    ) -> impl Iterator<Item = &'a RecordedEvent> + 'a {
        self.events
            .iter()
            .filter(move |event| Some(event.position) > seen && filter.accepts(&event.stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventMetadata;

    fn event(stream: &str, position: u64) -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::now_v7(),
            stream: stream.to_owned(),
            revision: 0,
            position: Position::at(position),
            event_type: "Thing".to_owned(),
            data: b"{}".to_vec(),
            metadata: EventMetadata {
                correlation_id: uuid::Uuid::now_v7(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    fn commit(after: Option<u64>, events: &[(&str, u64)]) -> Committed {
        Committed {
            after: after.map(Position::at),
            events: events
                .iter()
                .map(|(stream, position)| event(stream, *position))
                .collect(),
        }
    }

    #[test]
    fn a_commit_follows_a_log_seen_up_to_where_it_starts_or_past_it() {
        let first = commit(None, &[("order-1", 1)]);
        assert!(first.follows(None), "the first commit of an empty log");
        let next = commit(Some(5), &[("order-1", 6), ("order-2", 7)]);
        assert!(next.follows(Some(Position::at(5))));
        assert!(next.follows(Some(Position::at(6))), "seen partly already");
        assert!(!next.follows(Some(Position::at(4))), "position 5 was never seen");
        assert!(!next.follows(None), "nothing was seen");
        assert_eq!(next.last(), Some(Position::at(7)));
    }

    #[test]
    fn a_subscriber_takes_only_the_events_past_what_it_saw_that_its_filter_accepts() {
        let committed = commit(
            Some(5),
            &[("order-1", 6), ("product-1", 7), ("order-2", 8), ("$system", 9)],
        );
        let taken = |seen: u64, filter: &StreamFilter| -> Vec<u64> {
            committed
                .events_after(Some(Position::at(seen)), filter)
                .map(|event| event.position.commit)
                .collect()
        };
        assert_eq!(taken(5, &StreamFilter::all()), [6, 7, 8]);
        assert_eq!(taken(6, &StreamFilter::all()), [7, 8]);
        assert_eq!(taken(5, &StreamFilter::prefixes(["order-"])), [6, 8]);
        assert_eq!(taken(8, &StreamFilter::all()), Vec::<u64>::new());
    }
}
