//! A cap on the requests of one process that wait for something to happen
//! (an order's decision, the views reaching a position). A waiting request
//! holds its connection and a task for up to its whole wait, so without a
//! cap a burst of them holds as much as clients care to open; past the cap
//! a request answers at once what it would answer had its wait run out.
//!
//! Metrics, labelled `wait` with the cap's name:
//! - `waiting_requests` (gauge): requests waiting now;
//! - `waits_capped_total` (counter): requests answered at once because
//!   the cap was reached.

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct WaitCap {
    name: &'static str,
    max: usize,
    places: Semaphore,
}

/// A place among the waiters; the place is free again when it is dropped.
pub struct Waiting<'a> {
    cap: &'a WaitCap,
    _permit: SemaphorePermit<'a>,
}

impl WaitCap {
    /// At most `max` requests wait at a time; `name` labels the metrics.
    pub fn new(name: &'static str, max: usize) -> Self {
        crate::metrics::handle();
        Self {
            name,
            max,
            places: Semaphore::new(max),
        }
    }

    /// A place to wait in, or `None` when `max` requests wait already
    /// (counted in `waits_capped_total`).
    pub fn enter(&self) -> Option<Waiting<'_>> {
        let Ok(permit) = self.places.try_acquire() else {
            metrics::counter!("waits_capped_total", "wait" => self.name).increment(1);
            return None;
        };
        metrics::gauge!("waiting_requests", "wait" => self.name).increment(1.0);
        Some(Waiting {
            cap: self,
            _permit: permit,
        })
    }

    /// How many requests wait now.
    pub fn waiting(&self) -> usize {
        self.max - self.places.available_permits()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        metrics::gauge!("waiting_requests", "wait" => self.cap.name).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_nobody_enters_until_a_place_is_free() {
        let cap = WaitCap::new("test", 2);
        let first = cap.enter().expect("a first place");
        let second = cap.enter().expect("a second place");
        assert_eq!(cap.waiting(), 2);
        assert!(cap.enter().is_none(), "the cap is reached");
        drop(first);
        assert_eq!(cap.waiting(), 1);
        let third = cap.enter().expect("the freed place");
        assert!(cap.enter().is_none());
        drop((second, third));
        assert_eq!(cap.waiting(), 0);
    }
}
