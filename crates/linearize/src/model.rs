//! The sequential specification a history is checked against.
//!
//! A [`Model`] says what one object (one register, one lock) may answer in each state: `step`
//! takes a state, an input and the output the client saw, and returns the next state, or
//! `None` when that output is impossible in that state. Linearizability is then the question
//! "is there a total order of the operations, consistent with real time, in which every step
//! succeeds?" (Herlihy & Wing 1990).
//!
//! Why `partition`: linearizability is *local* (Herlihy & Wing, theorem 1): a history of many
//! independent objects is linearizable exactly when each object's sub-history is. Checking
//! keys and locks one by one turns one search over 10,000 operations — hopeless — into many
//! small ones (Porcupine calls this P-compositionality). The model names the object each input
//! touches; operations touching several objects are not supported (none of ours do).
//!
//! Why `step_unknown` is separate: an operation whose output nobody saw can still have changed
//! the state, and the checker must be able to apply it. Models here are deterministic given
//! the input, so that is one state. A model with several possible outcomes must return a state
//! that allows at least everything each of them allows, or the checker may report violations
//! that are not there; the option "it never took effect" is the checker's business, not the
//! model's.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification, split into independent objects.
pub trait Model {
    /// Names one independent object (a key, a lock). Use `()` for a single object.
    type Key: Clone + Ord + Debug;
    /// The state of one object. Hashed and compared by the memo cache: keep it small.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asks.
    type Input;
    /// What a client is told.
    type Output;

    /// The object an input touches.
    fn partition(&self, input: &Self::Input) -> Self::Key;

    /// The state of every object before the history starts.
    fn init(&self) -> Self::State;

    /// The state after `input` answered `output`, or `None` if `output` is impossible in
    /// `state` (an output of the wrong kind for the input is impossible in every state).
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// The state after `input` took effect with an output nobody observed. Must allow at
    /// least every behaviour that any possible outcome of `input` allows (see the module doc).
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Self::State;

    /// Whether `input` answering `output` leaves *every* state in which it is legal unchanged
    /// (a read; a cas that found another value). Such an operation, once legal, may be
    /// linearized at once: moving it earlier in any linearization, to a point where it is
    /// legal and after everything that returned before its call, breaks nothing. So the
    /// search never tries it later instead, which prunes most of the work on histories with
    /// many concurrent reads. Saying `false` is always safe (the default); saying `true` for
    /// an operation that can change the state makes the checker report false violations.
    fn is_read_only(&self, input: &Self::Input, output: &Self::Output) -> bool {
        let _ = (input, output);
        false
    }
}
