//! Catch-up subscriptions over the embedded log: page through what is
//! stored, then sleep until the writer announces a commit or the poll
//! interval passes (for writes made by another process).

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
    commits: watch::Receiver<Option<Position>>,
}

pub(super) fn subscribe(inner: Arc<Inner>, after: Option<Position>, filter: StreamFilter) -> Subscription {
    let cursor = Cursor {
        commits: inner.head.subscribe(),
        inner,
        after,
        filter,
        buffer: VecDeque::new(),
    };
    Subscription::new(futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                cursor.after = Some(event.position);
                return Some((Ok(event), Some(cursor)));
            }
            // Marking the commits seen before reading means a commit that
            // lands after the read still wakes the wait below.
            cursor.commits.borrow_and_update();
            match super::read_all(&cursor.inner, cursor.after, PAGE, cursor.filter.clone()).await {
                Err(error) => return Some((Err(error), None)),
                Ok(page) if page.is_empty() => {
                    tokio::select! {
                        _ = cursor.commits.changed() => {}
                        () = tokio::time::sleep(cursor.inner.options.poll_interval) => {}
                    }
                }
                Ok(page) => cursor.buffer.extend(page),
            }
        }
    }))
}
