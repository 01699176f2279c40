//! The shape every aggregate shares.

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

    /// The state after `events`, starting from the initial state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::State::default(), Self::evolve)
    }
}
