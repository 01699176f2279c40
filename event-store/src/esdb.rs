//! The EventStoreDB / KurrentDB adapter, over the official gRPC client.
//!
//! The client keeps its connection and reconnects by itself; calls made
//! while it is down fail with [`StoreError::Unavailable`], and subscriptions
//! resubscribe from the last event they delivered, forever.
//!
//! Positions: reads of `$all` and append results carry global positions;
//! stream reads on older servers do not (`u64::MAX`), and such events have
//! no [`RecordedEvent::global_position`].

mod snapshots;

use std::time::Duration;

use async_trait::async_trait;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions, ReadStreamOptions, RetryOptions,
    StreamPosition, SubscribeToAllOptions, SubscriptionFilter,
};
use serde_json::value::RawValue;

use crate::event::validate_append;
use crate::snapshot::{validate_max_count, validate_snapshot};
use crate::{
    AppendOutcome, EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, Snapshot,
    StoreError, StreamFilter, StreamName, Subscription,
};

/// How long a subscription waits before resubscribing after a failure.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct EsdbEventStore {
    client: Client,
}

impl EsdbEventStore {
    /// Connects with an EventStoreDB connection string, such as
    /// `esdb://localhost:2113?tls=false`.
    pub fn connect(connection_string: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings = connection_string.parse().map_err(|e| StoreError::UnsupportedUrl {
            url: connection_string.to_owned(),
            reason: format!("{e}"),
        })?;
        let client = Client::new(settings).map_err(|e| StoreError::unavailable("connecting to EventStoreDB", e))?;
        Ok(Self { client })
    }
}

#[async_trait]
impl EventStore for EsdbEventStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        validate_append(&events)?;
        let events = events.iter().map(to_event_data).collect::<Result<Vec<_>, _>>()?;
        let options = AppendToStreamOptions::default().expected_revision(to_esdb_revision(expected));
        match self.client.append_to_stream(stream.as_str(), &options, events).await {
            Ok(written) => Ok(AppendOutcome {
                revision: written.next_expected_version,
                position: from_esdb_position(written.position),
            }),
            Err(eventstore::Error::WrongExpectedVersion { current, .. }) => Err(StoreError::WrongExpectedRevision {
                stream: stream.to_string(),
                expected,
                actual: match current {
                    eventstore::CurrentRevision::Current(revision) => Some(revision),
                    eventstore::CurrentRevision::NoStream => None,
                },
            }),
            Err(e) => Err(StoreError::unavailable("appending to EventStoreDB", e)),
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from))
            .max_count(limit);
        let mut reading = match self.client.read_stream(stream.as_str(), &options).await {
            Ok(reading) => reading,
            Err(eventstore::Error::ResourceNotFound) => return Ok(vec![]),
            Err(e) => return Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
        };
        let mut events = Vec::new();
        loop {
            match reading.next().await {
                Ok(Some(resolved)) => events.push(from_esdb_event(resolved.get_original_event())?),
                Ok(None) | Err(eventstore::Error::ResourceNotFound) => return Ok(events),
                Err(e) => return Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
            }
        }
    }

    async fn read_last(&self, stream: &StreamName) -> Result<Option<RecordedEvent>, StoreError> {
        self.read_last_raw(stream.as_str())
            .await?
            .map(|event| from_esdb_event(&event))
            .transpose()
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
        filter: &StreamFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        const PAGE: usize = 1000;
        let mut events = Vec::new();
        let mut cursor = after;
        // The server filter is not used for reads: page through $all and
        // keep what passes, until `limit` events or the end of the log.
        while events.len() < limit {
            let start = cursor.map_or(StreamPosition::Start, |p| StreamPosition::Position(to_esdb_position(p)));
            let options = ReadAllOptions::default().forwards().position(start).max_count(PAGE + 1);
            let mut reading = self
                .client
                .read_all(&options)
                .await
                .map_err(|e| StoreError::unavailable("reading $all from EventStoreDB", e))?;
            let mut seen = 0;
            while let Some(resolved) = reading
                .next()
                .await
                .map_err(|e| StoreError::unavailable("reading $all from EventStoreDB", e))?
            {
                let original = resolved.get_original_event();
                let position = from_esdb_position(original.position);
                // Reading from a position includes it; the port excludes it.
                if cursor.is_some_and(|c| position <= c) {
                    continue;
                }
                seen += 1;
                cursor = Some(position);
                if filter.accepts(&original.stream_id) && !passed_over(original) {
                    events.push(from_esdb_event(original)?);
                    if events.len() == limit {
                        break;
                    }
                }
            }
            if seen == 0 {
                break;
            }
        }
        Ok(events)
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        const PAGE: usize = 256;
        // Backwards from the end, page by page, past the system events
        // (statistics, metadata) that keep arriving while Shop is idle.
        let mut before: Option<Position> = None;
        loop {
            let start = before.map_or(StreamPosition::End, |p| StreamPosition::Position(to_esdb_position(p)));
            let options = ReadAllOptions::default().backwards().position(start).max_count(PAGE);
            let page = self.read_all_page(&options, "reading the head of $all").await?;
            // Reading from a position may include it; it was looked at already.
            let page: Vec<_> = page
                .into_iter()
                .filter(|resolved| {
                    before.is_none_or(|b| from_esdb_position(resolved.get_original_event().position) < b)
                })
                .collect();
            if let Some(position) = last_visible(&page) {
                return Ok(Some(position));
            }
            match page.last() {
                Some(oldest) => before = Some(from_esdb_position(oldest.get_original_event().position)),
                None => return Ok(None),
            }
        }
    }

    fn subscribe_all(&self, after: Option<Position>, filter: StreamFilter) -> Subscription {
        let server_filter = if filter.as_prefixes().is_empty() {
            SubscriptionFilter::on_stream_name().exclude_system_events()
        } else {
            filter
                .as_prefixes()
                .iter()
                .fold(SubscriptionFilter::on_stream_name(), |f, prefix| f.add_prefix(prefix))
        };
        let start = after.map_or(StreamPosition::Start, |p| StreamPosition::Position(to_esdb_position(p)));
        let options = SubscribeToAllOptions::default()
            .position(start)
            .filter(server_filter)
            .retry_options(RetryOptions::default().retry_forever().retry_delay(RESUBSCRIBE_DELAY));
        let client = self.client.clone();
        let state = (client, options, after, filter, None::<eventstore::Subscription>);
        Subscription::new(futures::stream::unfold(Some(state), |state| async move {
            let (client, options, mut last, filter, subscription) = state?;
            let mut subscription = match subscription {
                Some(subscription) => subscription,
                None => client.subscribe_to_all(&options).await,
            };
            loop {
                let resolved = match subscription.next().await {
                    Ok(resolved) => resolved,
                    Err(e) => {
                        let error = StoreError::unavailable("following $all on EventStoreDB", e);
                        return Some((Err(error), None));
                    }
                };
                let original = resolved.get_original_event();
                let position = from_esdb_position(original.position);
                // Never hand out a position twice, whatever a resubscription replays.
                if last.is_some_and(|l| position <= l) || !filter.accepts(&original.stream_id) || passed_over(original)
                {
                    continue;
                }
                last = Some(position);
                let event = from_esdb_event(original);
                let failed = event.is_err();
                let next = (!failed).then_some((client, options, last, filter, Some(subscription)));
                return Some((event, next));
            }
        }))
    }

    async fn read_snapshot(&self, stream: &StreamName) -> Result<Option<Snapshot>, StoreError> {
        self.read_last_raw(&snapshots::stream_of(stream))
            .await?
            .map(|event| snapshots::decode(&event))
            .transpose()
    }

    async fn write_snapshot(&self, stream: &StreamName, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_snapshot(&snapshot)?;
        snapshots::write(&self.client, stream, &snapshot).await
    }

    async fn set_max_count(&self, stream: &StreamName, max_count: u64) -> Result<(), StoreError> {
        validate_max_count(max_count)?;
        snapshots::set_max_count(&self.client, stream.as_str(), max_count).await
    }
}

impl EsdbEventStore {
    /// The last event of `stream` as the client gives it.
    async fn read_last_raw(&self, stream: &str) -> Result<Option<eventstore::RecordedEvent>, StoreError> {
        let options = ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1);
        let mut reading = match self.client.read_stream(stream, &options).await {
            Ok(reading) => reading,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
        };
        match reading.next().await {
            // The original event, as `get_original_event` picks it, by value.
            Ok(Some(resolved)) => Ok(resolved.link.or(resolved.event)),
            Ok(None) | Err(eventstore::Error::ResourceNotFound) => Ok(None),
            Err(e) => Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
        }
    }

    async fn read_all_page(
        &self,
        options: &ReadAllOptions,
        context: &'static str,
    ) -> Result<Vec<eventstore::ResolvedEvent>, StoreError> {
        let mut reading = self
            .client
            .read_all(options)
            .await
            .map_err(|e| StoreError::unavailable(context, e))?;
        let mut page = Vec::new();
        while let Some(resolved) = reading.next().await.map_err(|e| StoreError::unavailable(context, e))? {
            page.push(resolved);
        }
        Ok(page)
    }
}

/// Whether readers of `$all` pass `event` over: a system event, by its type
/// (as the server's `exclude_system_events` filter decides) or by its
/// stream, or an event another tool wrote without Shop's metadata. Neither
/// is Shop's, so neither is corruption; a subscriber that stopped on one
/// would stop for good.
fn passed_over(event: &eventstore::RecordedEvent) -> bool {
    let system = event.event_type.starts_with('$') || event.stream_id.starts_with('$');
    system || serde_json::from_slice::<EventMetadata>(&event.custom_metadata).is_err()
}

/// The position of the newest event a subscriber can see in `page`, read
/// backwards (newest first).
fn last_visible(page: &[eventstore::ResolvedEvent]) -> Option<Position> {
    page.iter()
        .map(eventstore::ResolvedEvent::get_original_event)
        .find(|event| !passed_over(event))
        .map(|event| from_esdb_position(event.position))
}

fn to_event_data(event: &NewEvent) -> Result<EventData, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::InvalidEvent { reason: e.to_string() };
    let data: &RawValue = serde_json::from_slice(&event.data).map_err(invalid)?;
    EventData::json(event.event_type.as_str(), &data)
        .and_then(|event_data| event_data.id(event.id).metadata_as_json(&event.metadata))
        .map_err(invalid)
}

fn from_esdb_event(event: &eventstore::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let position = from_esdb_position(event.position);
    let metadata: EventMetadata = serde_json::from_slice(&event.custom_metadata).map_err(|e| StoreError::Corrupt {
        position,
        detail: format!("metadata: {e}"),
    })?;
    Ok(RecordedEvent {
        id: event.id,
        stream: event.stream_id.clone(),
        revision: event.revision,
        position,
        event_type: event.event_type.clone(),
        data: event.data.to_vec(),
        metadata,
        recorded_at: event.created,
    })
}

fn to_esdb_revision(expected: ExpectedRevision) -> eventstore::ExpectedRevision {
    match expected {
        ExpectedRevision::Any => eventstore::ExpectedRevision::Any,
        ExpectedRevision::NoStream => eventstore::ExpectedRevision::NoStream,
        ExpectedRevision::StreamExists => eventstore::ExpectedRevision::StreamExists,
        ExpectedRevision::Exact(revision) => eventstore::ExpectedRevision::Exact(revision),
    }
}

/// A position as the client gives it. A stream read on an older server
/// carries none (`u64::MAX` in either part): both parts are then `u64::MAX`,
/// which [`RecordedEvent::global_position`] reports as none.
fn from_esdb_position(position: eventstore::Position) -> Position {
    if position.commit == u64::MAX || position.prepare == u64::MAX {
        return Position::new(u64::MAX, u64::MAX);
    }
    Position::new(position.commit, position.prepare)
}

fn to_esdb_position(position: Position) -> eventstore::Position {
    eventstore::Position {
        commit: position.commit,
        prepare: position.prepare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the client hands it over; `position` as the server sent it.
    fn recorded(stream: &str, event_type: &str, commit: u64, prepare: u64) -> eventstore::RecordedEvent {
        let metadata = EventMetadata {
            correlation_id: uuid::Uuid::nil(),
            trace_id: None,
            causation_id: None,
            user_id: None,
            schema_version: 1,
        };
        eventstore::RecordedEvent {
            stream_id: stream.to_owned(),
            id: uuid::Uuid::now_v7(),
            revision: 3,
            event_type: event_type.to_owned(),
            data: b"{}".to_vec().into(),
            metadata: Default::default(),
            custom_metadata: serde_json::to_vec(&metadata).unwrap().into(),
            is_json: true,
            position: eventstore::Position { commit, prepare },
            created: chrono::Utc::now(),
        }
    }

    fn resolved(event: eventstore::RecordedEvent) -> eventstore::ResolvedEvent {
        eventstore::ResolvedEvent {
            event: Some(event),
            link: None,
            commit_position: None,
        }
    }

    #[test]
    fn a_stream_read_without_a_position_has_no_global_position() {
        for (commit, prepare) in [(u64::MAX, u64::MAX), (u64::MAX, 10), (10, u64::MAX)] {
            let event = from_esdb_event(&recorded("product-1", "ProductCreated", commit, prepare)).unwrap();
            assert_eq!(event.global_position(), None, "{commit}/{prepare}");
        }
        let event = from_esdb_event(&recorded("product-1", "ProductCreated", 20, 18)).unwrap();
        assert_eq!(event.global_position(), Some(Position::new(20, 18)));
    }

    #[test]
    fn the_head_passes_over_system_events() {
        // Read backwards: newest first.
        let page = [
            resolved(recorded("$stats-127.0.0.1:2113", "$statsCollected", 90, 90)),
            resolved(recorded("$$checkpoint-order-saga", "$metadata", 80, 80)),
            resolved(recorded("$ce-product", "$>", 70, 70)),
            resolved(recorded("product-1", "StockReserved", 60, 60)),
            resolved(recorded("order-1", "OrderPlaced", 50, 50)),
        ];
        assert_eq!(last_visible(&page), Some(Position::new(60, 60)));
        assert_eq!(last_visible(&page[..3]), None);
        assert_eq!(last_visible(&[]), None);
    }

    /// An event another tool appended to `$all`: no metadata, or not Shop's.
    fn foreign(stream: &str, custom_metadata: &[u8], commit: u64) -> eventstore::RecordedEvent {
        let mut event = recorded(stream, "SomethingHappened", commit, commit);
        event.custom_metadata = custom_metadata.to_vec().into();
        event
    }

    #[test]
    fn events_other_tools_wrote_are_passed_over_not_corrupt() {
        assert!(!passed_over(&recorded("order-1", "OrderPlaced", 50, 50)));
        assert!(passed_over(&recorded("$ce-product", "$>", 70, 70)));
        assert!(passed_over(&foreign("audit-1", b"", 40)));
        assert!(passed_over(&foreign("audit-1", br#"{"$correlationId":"x"}"#, 40)));
        assert!(passed_over(&foreign("order-2", b"not json", 40)));
    }

    #[test]
    fn the_head_passes_over_events_other_tools_wrote() {
        let page = [
            resolved(foreign("audit-1", b"", 95)),
            resolved(recorded("product-1", "StockReserved", 60, 60)),
        ];
        assert_eq!(last_visible(&page), Some(Position::new(60, 60)));
    }
}
