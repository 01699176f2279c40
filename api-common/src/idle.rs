//! When a connection is idle: no request has started, no handler has
//! finished, no response has handed a piece of its body over and no byte
//! of a response body has gone out for a while, and no handler is running.
//! Other bytes do not count, so an HTTP/2 client that sends a PING every
//! few seconds, or any other frame that asks for nothing, cannot keep a
//! connection open for ever.
//!
//! A handler that runs (waiting for the saga, say) keeps its connection
//! from counting as idle however quiet it is: the request deadline bounds
//! that instead. A response body still going out to a slow client keeps
//! it open as long as bytes move; a client that stopped reading stops them,
//! so that connection goes idle too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Buf, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
    /// Body bytes handed to hyper and not yet matched by bytes written to
    /// the socket: while some are owed, writes are progress.
    owed: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            owed: AtomicU64::new(0),
        })
    }

    /// Records progress: a response handed over a piece of its body.
    pub fn progressed(&self) {
        let since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(since, Ordering::Relaxed);
    }

    /// Records `bytes` of a response body handed to hyper, to be written.
    fn owe(&self, bytes: usize) {
        self.owed.fetch_add(bytes as u64, Ordering::Relaxed);
        self.progressed();
    }

    /// Records `bytes` written to the socket: progress while body bytes
    /// are owed (framing and headers count against them too, so a body is
    /// taken as gone out a little early, never late).
    fn wrote(&self, bytes: usize) {
        let owed = self.owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
            (owed > 0).then(|| owed.saturating_sub(bytes as u64))
        });
        if owed.is_ok() {
            self.progressed();
        }
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
/// for it), and the bytes in it.
pub struct WatchedBody<B> {
    body: B,
    activity: Arc<Activity>,
}

impl<B> WatchedBody<B> {
    pub fn new(body: B, activity: Arc<Activity>) -> Self {
        Self { body, activity }
    }
}

impl<B: Body + Unpin> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            let bytes = match frame {
                Some(Ok(frame)) => frame.data_ref().map_or(0, Buf::remaining),
                _ => 0,
            };
            self.activity.owe(bytes);
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

/// A socket that records in its [`Activity`] the bytes written to it.
pub struct WatchedSocket<S> {
    socket: S,
    activity: Arc<Activity>,
}

impl<S> WatchedSocket<S> {
    pub fn new(socket: S, activity: Arc<Activity>) -> Self {
        Self { socket, activity }
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(written)) = result {
            self.activity.wrote(*written);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedSocket<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedSocket<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.socket).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.socket).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
