//! Catch-up subscriptions over the embedded log: page through what is
//! stored, then sleep until the writer announces a commit or the poll
//! interval passes (for writes made by another process).
//!
//! A page shorter than asked for was everything stored when it was read, so
//! the next read waits for a commit: reading again at once would only find
//! nothing (under load that was half of every subscriber's reads).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use super::Inner;
use crate::{Position, RecordedEvent, StreamFilter, Subscription};

const PAGE: usize = 1000;

struct Cursor {
    inner: Arc<Inner>,
    after: Option<Position>,
    filter: StreamFilter,
    buffer: VecDeque<RecordedEvent>,
    /// The last read returned everything stored: wait for a commit before
    /// reading again.
    caught_up: bool,
    commits: watch::Receiver<Option<Position>>,
}

pub(super) fn subscribe(inner: Arc<Inner>, after: Option<Position>, filter: StreamFilter) -> Subscription {
    let cursor = Cursor {
        commits: inner.head.subscribe(),
        inner,
        after,
        filter,
        buffer: VecDeque::new(),
        caught_up: false,
    };
    Subscription::new(futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                cursor.after = Some(event.position);
                return Some((Ok(event), Some(cursor)));
            }
            if cursor.caught_up {
                tokio::select! {
                    _ = cursor.commits.changed() => {}
                    () = tokio::time::sleep(cursor.inner.options.poll_interval) => {}
                }
            }
            // Marking the commits seen before reading means a commit that
            // lands after the read still wakes the wait above.
            cursor.commits.borrow_and_update();
            match super::read_all(&cursor.inner, cursor.after, PAGE, cursor.filter.clone()).await {
                Err(error) => return Some((Err(error), None)),
                Ok(page) => {
                    cursor.caught_up = page.len() < PAGE;
                    cursor.buffer.extend(page);
                }
            }
        }
    }))
}
