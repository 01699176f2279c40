use std::pin::Pin;

use futures::{Stream, StreamExt};

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
}

impl Subscription {
    pub(crate) fn new(events: impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static) -> Self {
        Self {
            events: Box::pin(events),
        }
    }

    /// The next event; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        self.events.next().await
    }
}

impl Stream for Subscription {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx)
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
}
