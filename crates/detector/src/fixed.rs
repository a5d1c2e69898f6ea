//! The fixed-timeout failure detector: the baseline every claim about phi is measured against.
//!
//! The peer is suspected once `timeout` has passed since its last heartbeat, whatever the
//! network has been doing. Its phi is the degenerate analogue of a suspicion level: 0 while
//! the timeout has not expired, `+inf` from the instant it expires (`now - last >= timeout`).
//! Before the first heartbeat the peer is available, as with [`crate::PhiAccrual`].

use std::time::Duration;

use palisade_clock::MonoInstant;
use serde::{Deserialize, Serialize};

use crate::error::{DetectorError, check_positive_duration};
use crate::{DURATION_MAX, FailureDetector};

/// Parameters of a [`FixedTimeout`] detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedTimeoutConfig {
    /// Time without a heartbeat after which the peer is suspected; in `(0, DURATION_MAX]`.
    pub timeout: Duration,
}

impl Default for FixedTimeoutConfig {
    /// 4 s: the mean interval plus acceptable pause of Akka's phi defaults (1 s + 3 s).
    fn default() -> Self {
        FixedTimeoutConfig { timeout: Duration::from_secs(4) }
    }
}

impl FixedTimeoutConfig {
    /// Checks the timeout against its range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        check_positive_duration("timeout", self.timeout, DURATION_MAX)
    }
}

/// A detector that suspects the peer once `timeout` has passed since its last heartbeat.
#[derive(Debug, Clone)]
pub struct FixedTimeout {
    config: FixedTimeoutConfig,
    last_heartbeat: Option<MonoInstant>,
}

impl FixedTimeout {
    /// A detector that has not heard from the peer yet, or an error if `config` is invalid.
    pub fn new(config: FixedTimeoutConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        Ok(FixedTimeout { config, last_heartbeat: None })
    }

    /// The configuration.
    pub fn config(&self) -> &FixedTimeoutConfig {
        &self.config
    }

    /// The arrival time of the latest heartbeat, if any arrived since creation or reset.
    pub fn last_heartbeat(&self) -> Option<MonoInstant> {
        self.last_heartbeat
    }

    /// The instant at which, without a further heartbeat, the peer is suspected:
    /// last heartbeat + timeout (saturating); `None` before the first heartbeat.
    pub fn suspect_at(&self) -> Option<MonoInstant> {
        self.last_heartbeat.map(|last| last + self.config.timeout)
    }
}

impl FailureDetector for FixedTimeout {
    fn heartbeat(&mut self, now: MonoInstant) {
        self.last_heartbeat = Some(self.last_heartbeat.map_or(now, |last| last.max(now)));
    }

    fn phi(&self, now: MonoInstant) -> f64 {
        if self.is_available(now) { 0.0 } else { f64::INFINITY }
    }

    fn is_available(&self, now: MonoInstant) -> bool {
        match self.last_heartbeat {
            None => true,
            Some(last) => now.saturating_duration_since(last) < self.config.timeout,
        }
    }

    fn reset(&mut self) {
        self.last_heartbeat = None;
    }
}
