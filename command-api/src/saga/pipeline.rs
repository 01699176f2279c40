//! The saga's commands in flight. The runner hands out a batch's commands
//! and reads and steps the next batch while they execute, so the rounds an
//! order needs (reserve, then confirm) of different orders overlap instead
//! of queueing one after another. What keeps it as safe as one batch at a
//! time:
//!
//! - on one stream, commands still run in the order they were asked for
//!   (`super::turns`);
//! - once [`IN_FLIGHT`] batches are in flight, the runner reads no further
//!   until one finishes (what their commands found, and expiries, may add
//!   to them);
//! - the runner saves its checkpoint only once nothing is in flight
//!   ([`Pipeline::drain`]), so "every command of the events up to here was
//!   executed" is true when saved;
//! - reservations for orders the runner does not remember are followed up
//!   from the order's stream only once nothing is in flight, so the
//!   stream holds every decision the saga asked for before (as it did when
//!   batches ran one at a time);
//! - a failure is blamed on an event of the batch whose command failed,
//!   through that batch's own culprits.

use std::pin::Pin;

use event_store::Position;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use super::SagaError;
use super::commands::{Commands, Found};
use super::forgotten::Forgotten;
use super::poison::Culprits;
use super::progress::{Caused, Progress};
use super::turns::Turns;

/// How many batches' commands may be in flight at once.
pub(super) const IN_FLIGHT: usize = 3;

/// A batch's commands, executed.
pub(super) struct Executed {
    found: Result<Vec<Found>, SagaError>,
    culprits: Culprits,
    /// Everything up to here was handed out by the time this batch was.
    through: Option<Position>,
    /// The commands that followed from what an earlier batch found.
    follow_up: bool,
}

type Execution<'a> = Pin<Box<dyn Future<Output = Executed> + Send + 'a>>;

pub(super) struct Pipeline<'a> {
    commands: &'a Commands,
    forgotten: &'a Forgotten,
    turns: Turns,
    /// Oldest first; they finish in this order.
    in_flight: FuturesOrdered<Execution<'a>>,
    /// Follow-ups in flight: while there are any, nothing counts as handled.
    follow_ups: usize,
    /// The furthest `through` of the batches finished.
    finished: Option<Position>,
}

impl<'a> Pipeline<'a> {
    pub(super) fn new(commands: &'a Commands, forgotten: &'a Forgotten) -> Self {
        Self {
            commands,
            forgotten,
            turns: Turns::default(),
            in_flight: FuturesOrdered::new(),
            follow_ups: 0,
            finished: None,
        }
    }

    /// Whether the runner should wait for a batch to finish before it
    /// reads the next.
    pub(super) fn is_full(&self) -> bool {
        self.in_flight.len() >= IN_FLIGHT
    }

    /// Hands out `commands` caused by events noted in `culprits`, with the
    /// follow-up of the reservations `progress` set aside for orders it
    /// does not remember (decided once nothing is in flight). `through`:
    /// the log position up to which every command is now handed out.
    pub(super) async fn submit(
        &mut self,
        progress: &mut Progress,
        culprits: Culprits,
        mut commands: Vec<Caused>,
        through: Option<Position>,
    ) -> Result<(), SagaError> {
        let forgotten = progress.take_forgotten();
        if !forgotten.is_empty() {
            self.drain(progress).await?;
            let follow_up = self.forgotten.follow_up(forgotten).await;
            commands.extend(follow_up.map_err(|error| culprits.blame(error))?);
        }
        self.push(culprits, commands, through, false);
        Ok(())
    }

    fn push(&mut self, culprits: Culprits, commands: Vec<Caused>, through: Option<Position>, follow_up: bool) {
        let execution = self.commands.execute_in_turn(commands, &mut self.turns);
        self.follow_ups += usize::from(follow_up);
        self.in_flight.push_back(Box::pin(async move {
            Executed {
                found: execution.await,
                culprits,
                through,
                follow_up,
            }
        }));
    }

    /// The log position up to which every command handed out, and every
    /// one that followed from what they found, was executed: for the
    /// saga's health. `None` while that is not known yet, or follow-ups are
    /// in flight.
    pub(super) fn handled(&self) -> Option<Position> {
        if self.follow_ups > 0 { None } else { self.finished }
    }

    /// The oldest batch once it finished; `None` when nothing is in flight.
    /// Cancel-safe: a batch not yet finished stays in flight.
    pub(super) async fn next(&mut self) -> Option<Executed> {
        self.in_flight.next().await
    }

    /// Takes in a finished batch: steps what its commands found (a missing
    /// product) and hands out the commands that follow, or returns the
    /// failure blamed on the event that caused it.
    pub(super) fn finish(&mut self, executed: Executed, progress: &mut Progress) -> Result<(), SagaError> {
        let Executed {
            found,
            culprits,
            through,
            follow_up,
        } = executed;
        self.follow_ups -= usize::from(follow_up);
        let found = found.map_err(|error| culprits.blame(error))?;
        self.finished = self.finished.max(through);
        let follow: Vec<Caused> = found
            .into_iter()
            .flat_map(|(event, causation)| progress.step(event, causation))
            .collect();
        if !follow.is_empty() {
            self.push(culprits, follow, None, true);
        }
        if self.in_flight.is_empty() {
            self.turns.clear();
        } else {
            self.turns.prune();
        }
        Ok(())
    }

    /// Waits until every command handed out (and every one that follows
    /// from what they found) executed.
    pub(super) async fn drain(&mut self, progress: &mut Progress) -> Result<(), SagaError> {
        while let Some(executed) = self.next().await {
            self.finish(executed, progress)?;
        }
        Ok(())
    }
}
