//! `Outcome<T>`: what a client may honestly say about a request it sent.
//!
//! Why a third answer: over an unreliable network a client that sent a request and heard
//! nothing cannot know whether it ran (the chapter's "the request may have been lost, or the
//! response"). Retrying with the same [`crate::RequestId`] is safe — the state machine runs it
//! at most once and answers a duplicate with the first result — but retries end somewhere: the
//! client gives up, or its session ends and the dedup entry dies with it. At that point the only
//! truthful answer is "unknown", and the type makes the caller handle it instead of guessing
//! success or failure.

use serde::{Deserialize, Serialize};

/// The client-facing result of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<T> {
    /// The request was applied (exactly once) and this is its result.
    Done(T),
    /// The request may or may not have been applied; the client cannot find out. Callers must
    /// treat its effect as possible (e.g. re-read state before acting).
    Unknown,
}

impl<T> Outcome<T> {
    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// The result, if known.
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(t) => Some(t),
            Outcome::Unknown => None,
        }
    }

    /// Maps a known result.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(t) => Outcome::Done(f(t)),
            Outcome::Unknown => Outcome::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_stays_unknown_through_map() {
        let o: Outcome<u32> = Outcome::Unknown;
        assert_eq!(o.map(|x| x + 1), Outcome::Unknown);
        assert_eq!(Outcome::Done(1).map(|x| x + 1).done(), Some(2));
        assert!(!Outcome::<()>::Unknown.is_done());
    }
}
