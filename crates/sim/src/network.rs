//! The simulated network: what can happen to one message, and the system model that bounds it.
//!
//! Each message independently may be lost, duplicated, corrupted, delayed and reordered, with
//! the probabilities of a [`NetworkConfig`]. Its delay is `base + jitter + tail`: a uniform
//! jitter models ordinary variation, and with a small probability a heavy tail is added, drawn
//! from a Pareto distribution of shape 1 (`scale / u`, capped): the rare very slow message that
//! a timeout must survive (a retransmission, a full switch buffer, a GC on a middlebox). The tail
//! uses integer arithmetic only, so a seed gives the same delays on every platform.
//!
//! Each directed link is a FIFO queue: a message never arrives before the one sent ahead of it
//! on the same link plus a per-message transmission time, so one slow message holds back those
//! behind it (head-of-line blocking, as on a TCP connection). With `reorder_probability` a
//! message skips the queue and arrives after its own delay only, possibly before earlier ones.
//!
//! The [`NetworkModel`] then bounds the arrival time, as the textbook system models do:
//! synchronous (every delay at most `delay_max_nanos`), partially synchronous (a message sent at
//! time `t` arrives by `max(t, gst) + delay_max_after_gst_nanos`: unbounded delays before the
//! global stabilisation time, bounded after it), asynchronous (no bound but the tail cap). The
//! bounds are on delay only: loss is a separate knob, so "synchronous with loss" means "arrives
//! within the bound or not at all". Set the probabilities to zero for the lossless models.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// The smallest delay of any message, so that time always moves forward between a send and its
/// delivery and a message loop cannot spin forever at one instant.
pub const DELAY_NANOS_MIN: u64 = 1;

/// How a message's delay is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayConfig {
    /// Delay every message has at least (propagation).
    pub base_nanos: u64,
    /// Upper end of a uniform delay added to every message.
    pub jitter_nanos: u64,
    /// Probability that a message also gets a heavy-tailed extra delay.
    pub tail_probability: f64,
    /// Smallest heavy-tail extra delay (the Pareto scale): `P(extra > x) = scale / x`.
    pub tail_scale_nanos: u64,
    /// Largest heavy-tail extra delay.
    pub tail_max_nanos: u64,
    /// Time a message occupies its link: the next message on the link arrives at least this
    /// much later (unless reordered). Models bandwidth and queueing.
    pub per_message_nanos: u64,
}

impl Default for DelayConfig {
    /// A data-centre LAN: 200 µs ± 100 µs, 1% of messages 1 ms to 200 ms late, 1 µs per message.
    fn default() -> Self {
        DelayConfig {
            base_nanos: 200_000,
            jitter_nanos: 100_000,
            tail_probability: 0.01,
            tail_scale_nanos: 1_000_000,
            tail_max_nanos: 200_000_000,
            per_message_nanos: 1_000,
        }
    }
}

/// The system model: which bound, if any, the network keeps on delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkModel {
    /// Every message that arrives does so within `delay_max_nanos` of being sent.
    Synchronous {
        /// The bound on every delay.
        delay_max_nanos: u64,
    },
    /// A message sent at `t` that arrives does so by `max(t, gst_nanos) + delay_max`.
    PartiallySynchronous {
        /// The global stabilisation time (true time since the start of the run).
        gst_nanos: u64,
        /// The bound on delays that holds from the GST on.
        delay_max_after_gst_nanos: u64,
    },
    /// No bound on delays besides the tail cap of the [`DelayConfig`].
    Asynchronous,
}

impl NetworkModel {
    /// The latest true time at which a message sent at `sent_nanos` may arrive, if any.
    pub fn arrival_deadline(&self, sent_nanos: u64) -> Option<u64> {
        match *self {
            NetworkModel::Synchronous { delay_max_nanos } => {
                Some(sent_nanos.saturating_add(delay_max_nanos))
            }
            NetworkModel::PartiallySynchronous { gst_nanos, delay_max_after_gst_nanos } => {
                Some(sent_nanos.max(gst_nanos).saturating_add(delay_max_after_gst_nanos))
            }
            NetworkModel::Asynchronous => None,
        }
    }
}

/// The per-message behaviour of the network. All probabilities are in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Probability that a message is lost.
    pub drop_probability: f64,
    /// Probability that a message is delivered twice (each copy with its own delay).
    pub duplicate_probability: f64,
    /// Probability that a message skips the FIFO queue of its link.
    pub reorder_probability: f64,
    /// Probability that one bit of the message's frame flips on the way. The frame is encoded
    /// with `palisade_wire::encode`, flipped, and decoded: a decode error drops it (counted as
    /// corrupt-detected); a frame that still decodes is delivered as decoded.
    pub corrupt_probability: f64,
    /// How delays are drawn.
    pub delay: DelayConfig,
    /// The bound on delays.
    pub model: NetworkModel,
}

impl Default for NetworkConfig {
    /// A LAN that loses, duplicates, reorders and corrupts nothing, asynchronous (tail-capped).
    fn default() -> Self {
        NetworkConfig {
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            reorder_probability: 0.0,
            corrupt_probability: 0.0,
            delay: DelayConfig::default(),
            model: NetworkModel::Asynchronous,
        }
    }
}

impl NetworkConfig {
    /// A network with every per-message fault at a moderate rate: 5% loss, 2% duplicates,
    /// 5% reordering, 1% corruption, 5% of messages in the heavy tail.
    pub fn flaky() -> Self {
        NetworkConfig {
            drop_probability: 0.05,
            duplicate_probability: 0.02,
            reorder_probability: 0.05,
            corrupt_probability: 0.01,
            delay: DelayConfig { tail_probability: 0.05, ..DelayConfig::default() },
            model: NetworkModel::Asynchronous,
        }
    }

    /// Checks that every probability is in `[0, 1]` and the delay bounds are ordered.
    pub fn validate(&self) -> Result<(), SimError> {
        let probabilities = [
            self.drop_probability,
            self.duplicate_probability,
            self.reorder_probability,
            self.corrupt_probability,
            self.delay.tail_probability,
        ];
        if !probabilities.iter().all(|p| (0.0..=1.0).contains(p)) {
            return Err(SimError::InvalidNetwork("a probability is outside [0, 1]"));
        }
        if self.delay.tail_scale_nanos > self.delay.tail_max_nanos {
            return Err(SimError::InvalidNetwork("tail_scale_nanos exceeds tail_max_nanos"));
        }
        Ok(())
    }
}

/// A probability as a threshold on one uniform `u64` draw, computed once per configuration.
/// Zero and one draw nothing from the rng.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Odds {
    /// Probability 0.
    #[default]
    Never,
    /// True when a uniform `u64` is below the threshold (`p * 2^64`).
    Below(u64),
    /// Probability 1.
    Always,
}

impl Odds {
    pub fn of(p: f64) -> Odds {
        if p <= 0.0 {
            Odds::Never
        } else if p >= 1.0 {
            Odds::Always
        } else {
            // `p * 2^64` is below 2^64 for p < 1, so the cast does not saturate.
            Odds::Below((p * 18_446_744_073_709_551_616.0) as u64)
        }
    }

    pub fn draw(self, rng: &mut ChaCha8Rng) -> bool {
        match self {
            Odds::Never => false,
            Odds::Always => true,
            Odds::Below(threshold) => rng.next_u64() < threshold,
        }
    }
}

/// The odds of a [`NetworkConfig`], computed when it is set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NetOdds {
    pub drop: Odds,
    pub duplicate: Odds,
    pub reorder: Odds,
    pub corrupt: Odds,
    pub tail: Odds,
}

impl NetOdds {
    pub fn of(cfg: &NetworkConfig) -> NetOdds {
        NetOdds {
            drop: Odds::of(cfg.drop_probability),
            duplicate: Odds::of(cfg.duplicate_probability),
            reorder: Odds::of(cfg.reorder_probability),
            corrupt: Odds::of(cfg.corrupt_probability),
            tail: Odds::of(cfg.delay.tail_probability),
        }
    }
}

/// Draws one message's delay (before queueing and the model's bound).
pub(crate) fn sample_delay(cfg: &DelayConfig, tail: Odds, rng: &mut ChaCha8Rng) -> u64 {
    let mut delay = cfg.base_nanos;
    if cfg.jitter_nanos > 0 {
        delay = delay.saturating_add(rng.random_range(0..=cfg.jitter_nanos));
    }
    if tail.draw(rng) {
        delay = delay.saturating_add(sample_tail(cfg, rng));
    }
    delay.max(DELAY_NANOS_MIN)
}

/// Pareto of shape 1: `scale * 2^32 / u` with `u` uniform in `[1, 2^32]`, capped.
fn sample_tail(cfg: &DelayConfig, rng: &mut ChaCha8Rng) -> u64 {
    let u: u64 = rng.random_range(1..=(1u64 << 32));
    let tail = (u128::from(cfg.tail_scale_nanos) << 32) / u128::from(u);
    u64::try_from(tail).unwrap_or(u64::MAX).min(cfg.tail_max_nanos)
}

/// The FIFO state of every directed link: when the last message queued on it arrives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Links {
    n: usize,
    last_arrival: Vec<u64>,
}

impl Links {
    /// Grows the table to `n` processes, keeping what the existing links hold.
    pub fn grow(&mut self, n: usize) {
        assert!(n >= self.n);
        let mut next = vec![0; n * n];
        for from in 0..self.n {
            for to in 0..self.n {
                next[from * n + to] = self.last_arrival[from * self.n + to];
            }
        }
        self.n = n;
        self.last_arrival = next;
    }

    /// Arrival time of a message on `from -> to` sent at `sent` with a drawn `delay`: FIFO
    /// behind the link's last message plus `per_message_nanos` unless `reorder`, then bounded
    /// by the model's `deadline` (a bound the queue may not push a message past).
    pub fn arrival(
        &mut self,
        (from, to): (usize, usize),
        sent: u64,
        delay: u64,
        per_message_nanos: u64,
        reorder: bool,
        deadline: Option<u64>,
    ) -> u64 {
        let last = &mut self.last_arrival[from * self.n + to];
        let mut at = sent.saturating_add(delay);
        if !reorder {
            at = at.max(last.saturating_add(per_message_nanos));
        }
        if let Some(d) = deadline {
            at = at.min(d);
        }
        at = at.max(sent.saturating_add(DELAY_NANOS_MIN));
        if !reorder {
            *last = (*last).max(at);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn tail_is_heavy_and_capped() {
        let cfg = DelayConfig { tail_probability: 1.0, ..DelayConfig::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let tail = Odds::of(cfg.tail_probability);
        let samples: Vec<u64> = (0..10_000).map(|_| sample_delay(&cfg, tail, &mut rng)).collect();
        let floor = cfg.base_nanos + cfg.tail_scale_nanos;
        let ceiling = cfg.base_nanos + cfg.jitter_nanos + cfg.tail_max_nanos;
        assert!(samples.iter().all(|&d| d >= floor), "tail below its scale");
        assert!(samples.iter().all(|&d| d <= ceiling), "tail above its cap");
        // Shape 1: P(extra > 10 * scale) = 1/10; allow generous sampling error.
        let far = samples.iter().filter(|&&d| d > cfg.base_nanos + 10_100_000).count();
        assert!((700..1_300).contains(&far), "far tail count {far}");
    }

    #[test]
    fn fifo_links_queue_and_reorder_skips() {
        let mut links = Links::default();
        links.grow(2);
        let a = links.arrival((0, 1), 0, 1_000, 10, false, None);
        let b = links.arrival((0, 1), 5, 100, 10, false, None);
        assert_eq!(a, 1_000);
        assert_eq!(b, 1_010, "FIFO: behind the first plus its transmission time");
        let c = links.arrival((0, 1), 6, 100, 10, true, None);
        assert_eq!(c, 106, "a reordered message skips the queue");
        let d = links.arrival((1, 0), 6, 100, 10, false, None);
        assert_eq!(d, 106, "the reverse link has its own queue");
    }

    #[test]
    fn partial_synchrony_bounds_from_gst() {
        let m =
            NetworkModel::PartiallySynchronous { gst_nanos: 1_000, delay_max_after_gst_nanos: 50 };
        assert_eq!(m.arrival_deadline(10), Some(1_050));
        assert_eq!(m.arrival_deadline(2_000), Some(2_050));
        assert_eq!(NetworkModel::Asynchronous.arrival_deadline(5), None);
    }

    #[test]
    fn odds_match_their_probability() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let hits = (0..100_000).filter(|_| Odds::of(0.25).draw(&mut rng)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
        assert_eq!(Odds::of(0.0), Odds::Never);
        assert_eq!(Odds::of(1.0), Odds::Always);
    }

    #[test]
    fn validate_rejects_bad_probabilities() {
        let bad = NetworkConfig { drop_probability: 1.5, ..NetworkConfig::default() };
        assert!(bad.validate().is_err());
        assert!(NetworkConfig::flaky().validate().is_ok());
    }
}
