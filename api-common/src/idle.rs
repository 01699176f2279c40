//! When a connection is idle: no request has started, no handler has
//! finished and no response has handed a piece of its body to the socket
//! for a while, and no handler is running. Bytes alone do not count, so an
//! HTTP/2 client that sends a PING every few seconds, or any other frame
//! that asks for nothing, cannot keep a connection open for ever.
//!
//! A handler that runs (waiting for the saga, say) keeps its connection
//! from counting as idle however quiet it is: the request deadline bounds
//! that instead. A response whose client stopped reading stops moving its
//! body, so that connection goes idle too.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// What one connection's requests have been doing: shared by its handlers,
/// which count themselves, and its responses' bodies, which record each
/// piece they hand over.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last sign of progress.
    last: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        })
    }

    /// Records progress: a response handed over a piece of its body.
    pub fn progressed(&self) {
        let since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(since, Ordering::Relaxed);
    }

    /// Counts a handler as running until the guard is dropped; its start
    /// and its end are progress.
    pub fn handling(self: &Arc<Self>) -> HandlerGuard {
        self.progressed();
        self.handling.fetch_add(1, Ordering::Relaxed);
        HandlerGuard(Arc::clone(self))
    }

    /// Returns once the connection has been idle for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let quiet_from = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let due = quiet_from + timeout;
            if Instant::now() >= due {
                if self.handling.load(Ordering::Relaxed) == 0 {
                    return;
                }
                // Busy: look again a whole timeout later (or when the
                // handler's end moves `last`).
                tokio::time::sleep(timeout).await;
            } else {
                tokio::time::sleep_until(due).await;
            }
        }
    }
}

/// A running handler; its end counts as progress.
pub struct HandlerGuard(Arc<Activity>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        self.0.progressed();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that records in its [`Activity`] each piece it hands
/// over (hyper asks for the next one only once the client has taken room
/// for it) and its end.
pub struct Watched<B> {
    body: B,
    activity: Arc<Activity>,
}

impl<B> Watched<B> {
    pub fn new(body: B, activity: Arc<Activity>) -> Self {
        Self { body, activity }
    }
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if polled.is_ready() {
            self.activity.progressed();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
