//! The one error type of this crate.
//!
//! Every error is a configuration that was refused before any detector or evaluation ran: the
//! detectors themselves never fail (a late heartbeat or a stale `now` is an input, not an error).

use std::time::Duration;

/// Why a detector or evaluation configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorError {
    /// The phi threshold is NaN, infinite, zero or negative.
    #[error("phi threshold must be a finite number > 0, got {threshold}")]
    ThresholdInvalid {
        /// The refused threshold.
        threshold: f64,
    },
    /// The phi threshold is above [`crate::THRESHOLD_MAX`].
    #[error("phi threshold {threshold} is above the maximum {max}")]
    ThresholdTooLarge {
        /// The refused threshold.
        threshold: f64,
        /// The largest accepted threshold.
        max: f64,
    },
    /// `max_sample_size` is zero: phi needs at least one interval to estimate from.
    #[error("max_sample_size must be at least 1")]
    SampleSizeZero,
    /// `max_sample_size` is above [`crate::SAMPLE_SIZE_MAX`].
    #[error("max_sample_size {size} is above the maximum {max}")]
    SampleSizeTooLarge {
        /// The refused size.
        size: usize,
        /// The largest accepted size.
        max: usize,
    },
    /// A duration that must be positive is zero.
    #[error("{name} must be > 0")]
    DurationZero {
        /// The parameter's name.
        name: &'static str,
    },
    /// A duration is above its named maximum.
    #[error("{name} = {value:?} is above the maximum {max:?}")]
    DurationTooLarge {
        /// The parameter's name.
        name: &'static str,
        /// The refused value.
        value: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// An evaluation list (thresholds, timeouts, scenarios...) is empty.
    #[error("{name} must not be empty")]
    ListEmpty {
        /// The list's name.
        name: &'static str,
    },
    /// An evaluation list is longer than its named maximum.
    #[error("{name} has {len} entries, above the maximum {max}")]
    ListTooLong {
        /// The list's name.
        name: &'static str,
        /// Its length.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// An evaluation count or number is outside its accepted range.
    #[error("{name} = {value} is outside [{min}, {max}]")]
    OutOfRange {
        /// The parameter's name.
        name: &'static str,
        /// The refused value.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// The evaluation would generate more heartbeats per scenario than
    /// [`crate::eval::TRACE_HEARTBEATS_MAX`].
    #[error("{heartbeats} heartbeats per scenario is above the maximum {max}")]
    TraceTooLong {
        /// The number of heartbeats the configuration asks for.
        heartbeats: u64,
        /// The largest accepted number.
        max: u64,
    },
}

/// Checks `0 < value <= max` for the duration parameter `name`.
pub(crate) fn check_positive_duration(
    name: &'static str,
    value: Duration,
    max: Duration,
) -> Result<(), DetectorError> {
    if value.is_zero() {
        return Err(DetectorError::DurationZero { name });
    }
    check_duration_max(name, value, max)
}

/// Checks `value <= max` for the duration parameter `name`.
pub(crate) fn check_duration_max(
    name: &'static str,
    value: Duration,
    max: Duration,
) -> Result<(), DetectorError> {
    if value > max {
        return Err(DetectorError::DurationTooLarge { name, value, max });
    }
    Ok(())
}
