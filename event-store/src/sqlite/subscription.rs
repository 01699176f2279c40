//! Catch-up subscriptions over the embedded log: page through what is
//! stored; once everything stored was read, take each commit of this
//! process from the live tail ([`super::tail`]), and read the file again
//! only when the tail cannot say what came before a commit (another
//! process wrote, or this subscriber fell behind the tail) or when the poll
//! interval passes (for writes made by another process).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::Inner;
use super::tail::Committed;
use crate::{Position, RecordedEvent, StreamFilter, Subscription};

const PAGE: usize = 1000;

struct Cursor {
    inner: Arc<Inner>,
    /// The last event delivered.
    after: Option<Position>,
    filter: StreamFilter,
    buffer: VecDeque<RecordedEvent>,
    /// Set once a read returned everything stored: the log is seen up to
    /// `seen`, every event to there delivered or passed over by the filter.
    caught_up: bool,
    seen: Option<Position>,
    tail: broadcast::Receiver<Arc<Committed>>,
}

/// What a caught-up subscriber does next.
enum Next {
    /// Read the file from where it is.
    Read,
    /// Take these events of the tail, and stay caught up.
    Take(Arc<Committed>),
}

pub(super) fn subscribe(inner: Arc<Inner>, after: Option<Position>, filter: StreamFilter) -> Subscription {
    let cursor = Cursor {
        tail: inner.tail.subscribe(),
        inner,
        after,
        filter,
        buffer: VecDeque::new(),
        caught_up: false,
        seen: None,
    };
    Subscription::new(futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                cursor.after = Some(event.position);
                return Some((Ok(event), Some(cursor)));
            }
            if cursor.caught_up {
                match cursor.wait().await {
                    Next::Take(committed) => {
                        let seen = cursor.seen.max(cursor.after);
                        let events = committed.events_after(seen, &cursor.filter).cloned();
                        cursor.buffer.extend(events);
                        cursor.seen = committed.last().max(seen);
                        continue;
                    }
                    Next::Read => {}
                }
            }
            // The head before the read: everything up to it is in the read.
            let head = *cursor.inner.head.borrow();
            match super::read_all(&cursor.inner, cursor.after, PAGE, cursor.filter.clone()).await {
                Err(error) => return Some((Err(error), None)),
                Ok(page) => {
                    // A page shorter than asked for was everything stored.
                    cursor.caught_up = page.len() < PAGE;
                    let last = page.last().map(|event| event.position).or(cursor.after);
                    cursor.seen = if cursor.caught_up { last.max(head) } else { last };
                    cursor.buffer.extend(page);
                }
            }
        }
    }))
}

impl Cursor {
    /// Waits for the next commit of this process or the poll interval.
    async fn wait(&mut self) -> Next {
        let poll = tokio::time::sleep(self.inner.options.poll_interval);
        tokio::select! {
            received = self.tail.recv() => match received {
                Ok(committed) if committed.follows(self.seen.max(self.after)) => Next::Take(committed),
                // Another process wrote before this commit, or this
                // subscriber fell behind the tail: the file has it all.
                Ok(_) | Err(RecvError::Lagged(_)) => Next::Read,
                // The sender lives as long as the store this cursor holds,
                // so this is never seen; reading stays correct anyway.
                Err(RecvError::Closed) => Next::Read,
            },
            () = poll => Next::Read,
        }
    }
}
