//! Configuration errors of the clock trackers ([`crate::ClockBound`], [`crate::OffsetEstimator`]).
//!
//! The trackers themselves never fail: a sample they cannot use is an outcome
//! ([`crate::SampleOutcome`]), a clock they cannot vouch for is a status
//! ([`crate::ClockStatus`]). Only a configuration can be refused, before anything runs. The
//! logical clocks have their own error type, [`crate::HlcError`], for inputs from peers.

/// Why a clock tracker configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The drift bound is above [`crate::DRIFT_BOUND_PPM_MAX`].
    #[error("drift bound {ppm} ppm is above the maximum {max} ppm")]
    DriftTooLarge {
        /// The refused bound.
        ppm: u32,
        /// The largest accepted bound.
        max: u32,
    },
    /// A duration that must be positive is zero.
    #[error("{name} must be > 0")]
    DurationZero {
        /// The parameter's name.
        name: &'static str,
    },
    /// `samples_max` is zero or above [`crate::OFFSET_SAMPLES_MAX`].
    #[error("samples_max {samples_max} is outside 1..={max}")]
    SamplesMaxOutOfRange {
        /// The refused count.
        samples_max: usize,
        /// The largest accepted count.
        max: usize,
    },
}

/// Checks a drift bound against [`crate::DRIFT_BOUND_PPM_MAX`].
pub(crate) fn check_drift(ppm: u32) -> Result<(), ConfigError> {
    let max = crate::DRIFT_BOUND_PPM_MAX;
    if ppm > max {
        return Err(ConfigError::DriftTooLarge { ppm, max });
    }
    Ok(())
}
