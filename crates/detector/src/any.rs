//! One type for "a failure detector of either kind", so that a configuration file, the raft
//! core or the evaluation harness can choose the detector at run time without generics or
//! boxing.

use std::fmt;

use palisade_clock::MonoInstant;
use serde::{Deserialize, Serialize};

use crate::error::DetectorError;
use crate::{FailureDetector, FixedTimeout, FixedTimeoutConfig, PhiAccrual, PhiAccrualConfig};

/// The configuration of either detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DetectorConfig {
    /// A [`PhiAccrual`] detector.
    PhiAccrual(PhiAccrualConfig),
    /// A [`FixedTimeout`] detector.
    FixedTimeout(FixedTimeoutConfig),
}

impl DetectorConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), DetectorError> {
        match self {
            DetectorConfig::PhiAccrual(c) => c.validate(),
            DetectorConfig::FixedTimeout(c) => c.validate(),
        }
    }

    /// Builds the detector, or an error if the configuration is invalid.
    pub fn build(&self) -> Result<AnyDetector, DetectorError> {
        Ok(match self {
            DetectorConfig::PhiAccrual(c) => AnyDetector::PhiAccrual(PhiAccrual::new(*c)?),
            DetectorConfig::FixedTimeout(c) => AnyDetector::FixedTimeout(FixedTimeout::new(*c)?),
        })
    }
}

impl fmt::Display for DetectorConfig {
    /// `phi 8 (pause 3s)` or `fixed 2s`: the label used by the evaluation table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorConfig::PhiAccrual(c) => write!(
                f,
                "phi {} (pause {})",
                c.threshold,
                fmt_seconds(c.acceptable_heartbeat_pause)
            ),
            DetectorConfig::FixedTimeout(c) => write!(f, "fixed {}", fmt_seconds(c.timeout)),
        }
    }
}

/// `1.5s`, `3s`, `0.25s`: a duration in seconds without trailing zeros.
pub(crate) fn fmt_seconds(d: std::time::Duration) -> String {
    let text = format!("{:.9}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

/// Either detector, behind one [`FailureDetector`] implementation.
#[derive(Debug, Clone)]
pub enum AnyDetector {
    /// A [`PhiAccrual`] detector.
    PhiAccrual(PhiAccrual),
    /// A [`FixedTimeout`] detector.
    FixedTimeout(FixedTimeout),
}

impl AnyDetector {
    /// See [`PhiAccrual::suspect_at`] and [`FixedTimeout::suspect_at`].
    pub fn suspect_at(&self) -> Option<MonoInstant> {
        match self {
            AnyDetector::PhiAccrual(d) => d.suspect_at(),
            AnyDetector::FixedTimeout(d) => d.suspect_at(),
        }
    }
}

impl FailureDetector for AnyDetector {
    fn heartbeat(&mut self, now: MonoInstant) {
        match self {
            AnyDetector::PhiAccrual(d) => d.heartbeat(now),
            AnyDetector::FixedTimeout(d) => d.heartbeat(now),
        }
    }

    fn phi(&self, now: MonoInstant) -> f64 {
        match self {
            AnyDetector::PhiAccrual(d) => d.phi(now),
            AnyDetector::FixedTimeout(d) => d.phi(now),
        }
    }

    fn is_available(&self, now: MonoInstant) -> bool {
        match self {
            AnyDetector::PhiAccrual(d) => d.is_available(now),
            AnyDetector::FixedTimeout(d) => d.is_available(now),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyDetector::PhiAccrual(d) => d.reset(),
            AnyDetector::FixedTimeout(d) => d.reset(),
        }
    }
}
