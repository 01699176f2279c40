//! Whose turn it is on a stream. The saga executes one batch's commands
//! while it reads and steps the next (`super::pipeline`), so the commands
//! of two batches may be in flight at once; on one stream they must still
//! run in the order the saga asked for them (a release after the
//! reservation it undoes, a confirmation after the order was placed). A
//! stream's commands take a turn when they are handed out, and wait for
//! the turn taken before them on that stream to finish. If it failed, they
//! do not run at all: one batch at a time, nothing after a failed command
//! ran before the restart, and a later command on its stream must not
//! either (its batch fails, and the runner restarts from its checkpoint).

use std::collections::HashMap;

use tokio::sync::oneshot;

/// The last turn taken on each stream since nothing was in flight.
#[derive(Default)]
pub(super) struct Turns(HashMap<String, oneshot::Receiver<()>>);

/// One group's turn on its stream: it may start once the turn before it
/// finished, and lets the next one start when it finished itself
/// ([`Turn::finished`]); dropped without, it failed.
pub(super) struct Turn {
    after: Option<oneshot::Receiver<()>>,
    finishes: oneshot::Sender<()>,
}

/// The turn before failed: the commands waiting for it do not run.
#[derive(Debug, thiserror::Error)]
#[error("an earlier saga command on the same stream failed")]
pub(super) struct EarlierFailed;

impl Turns {
    /// The next turn on `stream`, after every turn taken on it before.
    pub(super) fn take(&mut self, stream: String) -> Turn {
        let (finishes, finished) = oneshot::channel();
        let after = self.0.insert(stream, finished);
        Turn { after, finishes }
    }

    /// Forgets every stream: for when no turn is in flight.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Forgets the streams whose last turn finished, so that the streams
    /// of a long busy spell are not all kept. A failed one is kept: the
    /// next turn on its stream must not run.
    pub(super) fn prune(&mut self) {
        self.0.retain(|_, last| match last.try_recv() {
            Ok(()) => false,
            Err(oneshot::error::TryRecvError::Empty) => true,
            Err(oneshot::error::TryRecvError::Closed) => {
                // A receiver that answered cannot be awaited again: the
                // next turn waits on one that says "failed" as well.
                let (_failed, failed) = oneshot::channel();
                *last = failed;
                true
            }
        });
    }
}

impl Turn {
    /// Waits until the turn taken before this one on its stream finished;
    /// [`EarlierFailed`] if it failed instead. Cancel-safe: a wait given
    /// up on leaves the turn waiting as before.
    pub(super) async fn wait(&mut self) -> Result<(), EarlierFailed> {
        if let Some(after) = &mut self.after {
            after.await.map_err(|_dropped| EarlierFailed)?;
            self.after = None;
        }
        Ok(())
    }

    /// This turn's commands all executed: the next turn may start.
    pub(super) fn finished(self) {
        // The next turn may not be taken yet, or never be: nobody waits.
        let _ = self.finishes.send(());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LONG: Duration = Duration::from_secs(5);
    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_turn_waits_for_the_one_before_it_on_its_stream_only() {
        let mut turns = Turns::default();
        let first = turns.take("product-1".to_owned());
        let mut second = turns.take("product-1".to_owned());
        let mut elsewhere = turns.take("product-2".to_owned());

        let other_stream = tokio::time::timeout(LONG, elsewhere.wait()).await;
        assert!(
            matches!(other_stream, Ok(Ok(()))),
            "another stream's turn does not wait"
        );
        let waiting = tokio::time::timeout(SHORT, second.wait()).await;
        assert!(waiting.is_err(), "the second turn waits while the first is in flight");

        first.finished();
        let started = tokio::time::timeout(LONG, second.wait()).await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "the second turn starts once the first finished"
        );
    }

    #[tokio::test]
    async fn turns_queue_in_the_order_taken() {
        let mut turns = Turns::default();
        let first = turns.take("order-1".to_owned());
        let mut second = turns.take("order-1".to_owned());
        let mut third = turns.take("order-1".to_owned());

        first.finished();
        let waiting = tokio::time::timeout(SHORT, third.wait()).await;
        assert!(waiting.is_err(), "the third waits for the second, not the first");
        assert!(matches!(second.wait().await, Ok(())));
        second.finished();
        let started = tokio::time::timeout(LONG, third.wait()).await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "the third starts once the second finished"
        );
    }

    #[tokio::test]
    async fn after_a_failed_turn_the_next_ones_on_its_stream_do_not_run() {
        let mut turns = Turns::default();
        let failed = turns.take("product-1".to_owned());
        let mut second = turns.take("product-1".to_owned());
        let mut third = turns.take("product-1".to_owned());

        drop(failed);
        assert!(matches!(second.wait().await, Err(EarlierFailed)));
        drop(second);
        assert!(
            matches!(third.wait().await, Err(EarlierFailed)),
            "the failure passes down the queue"
        );
    }

    #[tokio::test]
    async fn pruning_forgets_finished_streams_and_keeps_the_rest() {
        let mut turns = Turns::default();
        turns.take("finished".to_owned()).finished();
        drop(turns.take("failed".to_owned()));
        let _in_flight = turns.take("in-flight".to_owned());
        turns.prune();

        let mut kept: Vec<&str> = turns.0.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["failed", "in-flight"]);
        let mut after_failed = turns.take("failed".to_owned());
        assert!(matches!(after_failed.wait().await, Err(EarlierFailed)));
    }

    #[tokio::test]
    async fn a_cleared_queue_starts_afresh() {
        let mut turns = Turns::default();
        let _in_flight = turns.take("order-1".to_owned());
        turns.clear();
        let mut next = turns.take("order-1".to_owned());
        let started = tokio::time::timeout(LONG, next.wait()).await;
        assert!(matches!(started, Ok(Ok(()))));
    }
}
