use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{FutureExt, Stream, StreamExt};

use crate::{RecordedEvent, StoreError};

/// Which streams a global read or subscription sees: those whose names start
/// with one of the prefixes, or every stream when there are none. System
/// streams (`$...`) are never seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFilter {
    prefixes: Vec<String>,
}

impl StreamFilter {
    /// Every non-system stream.
    pub fn all() -> Self {
        Self::default()
    }

    /// Streams starting with any of `prefixes`, such as `["order-", "product-"]`.
    pub fn prefixes<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }

    pub fn as_prefixes(&self) -> &[String] {
        &self.prefixes
    }

    pub fn accepts(&self, stream: &str) -> bool {
        !stream.starts_with('$') && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| stream.starts_with(p)))
    }
}

/// A live subscription to the global log. After an error it ends: the
/// subscriber resubscribes from the last position it handled.
pub struct Subscription {
    events: Pin<Box<dyn Stream<Item = Result<RecordedEvent, StoreError>> + Send>>,
    /// An error met while [`Subscription::next_batch`] gathered a batch,
    /// held back so that the events before it are delivered first.
    failed: Option<StoreError>,
    /// Set once the events ran out or an error was met: from then on
    /// nothing more comes, whatever the adapter's stream would do.
    ended: bool,
}

impl Subscription {
    pub(crate) fn new(events: impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static) -> Self {
        Self {
            events: Box::pin(events),
            failed: None,
            ended: false,
        }
    }

    /// The next event; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        StreamExt::next(self).await
    }

    /// The next batch: waits for one event, then adds the events that are
    /// ready without waiting, up to `max` in all (`max` below 1 counts as
    /// 1). `None` once the subscription has ended.
    ///
    /// An error after the first event ends the batch: this call returns the
    /// events before the error, the next call (of this or of
    /// [`Subscription::next`]) returns the error, and then the subscription
    /// has ended. So nothing read before an error is lost, and a subscriber
    /// that handles the batch can resubscribe from its last event.
    ///
    /// Cancel-safe: the only wait is for the first event, so a
    /// `tokio::select!` that drops this future loses no event.
    pub async fn next_batch(&mut self, max: usize) -> Option<Result<Vec<RecordedEvent>, StoreError>> {
        let first = match self.next().await? {
            Ok(event) => event,
            Err(error) => return Some(Err(error)),
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match self.next().now_or_never() {
                Some(Some(Ok(event))) => batch.push(event),
                Some(Some(Err(error))) => {
                    self.failed = Some(error);
                    break;
                }
                // Ended, or nothing ready yet: the batch is what we have.
                Some(None) | None => break,
            }
        }
        Some(Ok(batch))
    }
}

impl Stream for Subscription {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(error) = this.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let next = ready!(this.events.as_mut().poll_next(cx));
        this.ended = !matches!(next, Some(Ok(_)));
        Poll::Ready(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_prefixes_and_never_system_streams() {
        let all = StreamFilter::all();
        assert!(all.accepts("order-1"));
        assert!(!all.accepts("$stats"));
        let orders = StreamFilter::prefixes(["order-", "product-"]);
        assert!(orders.accepts("order-1"));
        assert!(orders.accepts("product-2"));
        assert!(!orders.accepts("account-3"));
    }

    fn recorded(offset: u64) -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::new_v4(),
            stream: "thing-1".to_owned(),
            revision: offset,
            position: crate::Position::at(offset),
            event_type: "Thing".to_owned(),
            data: b"{}".to_vec(),
            metadata: crate::EventMetadata {
                correlation_id: uuid::Uuid::new_v4(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    fn offsets(batch: &[RecordedEvent]) -> Vec<u64> {
        batch.iter().map(|event| event.position.commit).collect()
    }

    /// The embedded store reads a page before it fails, so its errors are
    /// never ready mid-batch; this stream has one ready there.
    #[test]
    fn an_error_ready_mid_batch_comes_after_the_events_before_it_then_the_end() {
        futures::executor::block_on(async {
            let items = [
                Ok(recorded(1)),
                Ok(recorded(2)),
                Err(StoreError::Closed),
                Ok(recorded(4)),
            ];
            let mut subscription = Subscription::new(futures::stream::iter(items));
            let batch = subscription.next_batch(10).await.unwrap().unwrap();
            assert_eq!(offsets(&batch), [1, 2], "the events before the error");
            assert!(matches!(
                subscription.next_batch(10).await,
                Some(Err(StoreError::Closed))
            ));
            assert!(subscription.next_batch(10).await.is_none(), "nothing after the error");
            assert!(subscription.next().await.is_none());
        });
    }

    #[test]
    fn a_batch_ends_with_the_events_and_the_next_call_says_so() {
        futures::executor::block_on(async {
            let mut subscription = Subscription::new(futures::stream::iter([Ok(recorded(1)), Ok(recorded(2))]));
            let batch = subscription.next_batch(10).await.unwrap().unwrap();
            assert_eq!(offsets(&batch), [1, 2]);
            assert!(subscription.next_batch(10).await.is_none());
            let mut zero = Subscription::new(futures::stream::iter([Ok(recorded(1)), Ok(recorded(2))]));
            let batch = zero.next_batch(0).await.unwrap().unwrap();
            assert_eq!(offsets(&batch), [1], "a maximum of 0 counts as 1");
        });
    }
}
