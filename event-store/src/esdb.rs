//! The EventStoreDB / KurrentDB adapter, over the official gRPC client.
//!
//! The client keeps its connection and reconnects by itself; calls made
//! while it is down fail with [`StoreError::Unavailable`], and subscriptions
//! resubscribe from the last event they delivered, forever.

use std::time::Duration;

use async_trait::async_trait;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions, ReadStreamOptions, RetryOptions,
    StreamPosition, SubscribeToAllOptions, SubscriptionFilter,
};
use serde_json::value::RawValue;

use crate::event::validate_append;
use crate::{
    AppendOutcome, EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, StoreError,
    StreamFilter, StreamName, Subscription,
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
        let options = ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1);
        let mut reading = match self.client.read_stream(stream.as_str(), &options).await {
            Ok(reading) => reading,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
        };
        match reading.next().await {
            Ok(Some(resolved)) => Ok(Some(from_esdb_event(resolved.get_original_event())?)),
            Ok(None) | Err(eventstore::Error::ResourceNotFound) => Ok(None),
            Err(e) => Err(StoreError::unavailable("reading a stream from EventStoreDB", e)),
        }
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
                if filter.accepts(&original.stream_id) {
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
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1);
        let mut reading = self
            .client
            .read_all(&options)
            .await
            .map_err(|e| StoreError::unavailable("reading the head of $all", e))?;
        let last = reading
            .next()
            .await
            .map_err(|e| StoreError::unavailable("reading the head of $all", e))?;
        Ok(last.map(|resolved| from_esdb_position(resolved.get_original_event().position)))
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
                if last.is_some_and(|l| position <= l) || !filter.accepts(&original.stream_id) {
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

fn from_esdb_position(position: eventstore::Position) -> Position {
    Position::new(position.commit, position.prepare)
}

fn to_esdb_position(position: Position) -> eventstore::Position {
    eventstore::Position {
        commit: position.commit,
        prepare: position.prepare,
    }
}
