//! The bound on callers waiting for a hashing slot: a place in the queue is
//! taken before waiting and left when the wait ends, however it ends.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::passwords::HashingError;

pub struct Queue {
    waiting: AtomicUsize,
    bound: usize,
}

/// A place in the queue, left when dropped.
pub struct Place<'a>(&'a Queue);

impl Queue {
    pub fn new(bound: usize) -> Self {
        Self {
            waiting: AtomicUsize::new(0),
            bound,
        }
    }

    /// A place, or [`HashingError::Busy`] when `bound` callers already wait.
    pub fn join(&self) -> Result<Place<'_>, HashingError> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.bound).then_some(waiting + 1)
            })
            .map(|_| Place(self))
            .map_err(HashingError::Busy)
    }

    /// How many wait now.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_refused_at_the_bound_and_freed_when_left() {
        let queue = Queue::new(2);
        let first = queue.join().unwrap();
        let _second = queue.join().unwrap();
        assert!(matches!(queue.join(), Err(HashingError::Busy(2))));
        drop(first);
        assert_eq!(queue.waiting(), 1);
        let _third = queue.join().unwrap();
    }
}
