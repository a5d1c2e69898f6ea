//! Scenarios: the chapter's stories, replayed on purpose in the simulator, each with a report.
//!
//! A random sweep finds the schedules that break a system; a scenario shows a person the one
//! schedule a chapter is about, step by step, with the numbers. Each scenario is a function
//! from a seed to a result struct that carries a [`Timeline`] for the HTML report, the facts
//! the story demonstrates (tokens, which write was rejected, which update was lost) for tests
//! to assert, and the story itself as lines of text for the command line.
//!
//! - [`fencing`] (`figure-8-5`): a lock holder paused past its TTL is fenced off by the store
//!   that checks tokens, and causes a lost update at the store that does not.
//! - [`lww`] (`lww-clock-skew`): last-write-wins drops a causally later write when the writer's
//!   clock is behind; hybrid logical clock versions keep it.
//!
//! `palisade sim scenario NAME [--report FILE.html] [--seed N]` runs them.

pub mod fencing;
pub mod lww;
pub mod record;

use crate::SimError;
use crate::report::Timeline;

/// Nanoseconds per millisecond.
pub(crate) const MS: u64 = 1_000_000;

/// The seed scenarios use unless told otherwise.
pub const DEFAULT_SEED: u64 = 85;

/// The scenarios, by name, with one line each.
pub const SCENARIOS: [(&str, &str); 2] = [
    (
        "figure-8-5",
        "a lock holder paused past its TTL writes with its old fencing token: the fenced store \
         rejects it, the unchecked one loses an update",
    ),
    (
        "lww-clock-skew",
        "last-write-wins keeps the older value when the later writer's clock is behind; HLC \
         versions keep the causal order",
    ),
];

/// Why a scenario could not tell its story.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// No scenario has that name.
    #[error("no scenario named {0:?} (see --list)")]
    Unknown(String),
    /// A step did not happen within its time limit.
    #[error("the scenario waited in vain for {0}")]
    Timeout(String),
    /// A step could not be taken.
    #[error("the scenario got stuck: {0}")]
    Stuck(&'static str),
    /// Something the story relies on went differently.
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// The simulator refused a call.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// What any scenario produced, for the command line.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    /// The scenario's name.
    pub name: &'static str,
    /// The report.
    pub timeline: Timeline,
    /// The story, one line per step.
    pub story: Vec<String>,
}

/// Runs the scenario `name` with `seed`.
pub fn run_scenario(name: &str, seed: u64) -> Result<ScenarioRun, ScenarioError> {
    match name {
        "figure-8-5" => {
            let r = fencing::run(seed)?;
            Ok(ScenarioRun { name: SCENARIOS[0].0, timeline: r.timeline, story: r.story })
        }
        "lww-clock-skew" => {
            let r = lww::run(seed)?;
            Ok(ScenarioRun { name: SCENARIOS[1].0, timeline: r.timeline, story: r.story })
        }
        other => Err(ScenarioError::Unknown(other.to_string())),
    }
}
