//! The shape every aggregate shares.

/// Each command's answer, in order, when several are decided together
/// ([`Decider::decide_each`]): its events or its refusal.
pub type Answers<D> = Vec<Result<Vec<<D as Decider>::Event>, <D as Decider>::Error>>;

/// An aggregate as a decider: a pure `decide` that turns a command into new
/// events (or a typed refusal), and a pure `evolve` that folds an event into
/// the state. The command side loads a stream, folds it, decides, and appends
/// the new events with the revision it loaded at.
pub trait Decider {
    type State: Default;
    type Command;
    type Event;
    type Error;

    fn decide(state: &Self::State, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Decides `commands` one after another, each on the state the ones
    /// before it left: each command's events or its refusal, in order, and
    /// the state after all of them. A refused command changes nothing, so
    /// the ones after it are decided as if it had not been given. This is
    /// what lets several commands on one aggregate share one append: the
    /// events are exactly those of executing the commands one by one.
    fn decide_each(
        state: Self::State,
        commands: impl IntoIterator<Item = Self::Command>,
    ) -> (Answers<Self>, Self::State) {
        let mut state = state;
        let mut decided = Vec::new();
        for command in commands {
            let outcome = Self::decide(&state, command);
            if let Ok(events) = &outcome {
                state = events.iter().fold(state, Self::evolve);
            }
            decided.push(outcome);
        }
        (decided, state)
    }

    /// The state after `events`, starting from the initial state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::State::default(), Self::evolve)
    }
}
