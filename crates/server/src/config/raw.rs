//! The configuration as written (TOML file, then flags) and its conversion to typed values.
//!
//! Parsing is in two steps so that every error can name its field: serde reads the file into
//! [`RawConfig`], whose durations and addresses are still strings (an unknown key or a value
//! of the wrong TOML type is refused here, by the TOML parser, with the key and the line);
//! [`ConfigOverrides`] from the command line replace whole fields of it; then [`into_config`]
//! parses each string with the field's name at hand and fills in the defaults. Flags are
//! strings for the same reason: `--heartbeat-interval 10x` fails with the same message as
//! `heartbeat_interval = "10x"` in the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, ElectionSettings, HostPort, LogFormat, PeerConfig, ServerConfig, defaults,
};

/// The file as written. Every field is optional here; required ones are checked after the
/// flags are applied.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub cluster: Option<String>,
    pub cluster_id: Option<i64>,
    pub node_id: Option<i64>,
    pub data_dir: Option<PathBuf>,
    pub peer_listen: Option<String>,
    pub http_listen: Option<String>,
    pub ttl_min: Option<String>,
    pub ttl_max: Option<String>,
    pub lock_delay: Option<String>,
    pub checkpoint_interval: Option<String>,
    pub pause_detect_threshold: Option<String>,
    pub heartbeat_interval: Option<String>,
    pub clock_offset_max: Option<String>,
    pub drift_bound_ppm: Option<i64>,
    pub snapshot_every_entries: Option<i64>,
    pub request_timeout: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub election: Option<RawElection>,
    #[serde(default)]
    pub peers: Vec<RawPeer>,
}

/// One `[[peers]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub id: i64,
    pub peer_addr: String,
    pub http_addr: String,
}

/// The `[election]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElection {
    pub kind: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub threshold: Option<f64>,
    pub acceptable_pause: Option<String>,
    pub min_std_deviation: Option<String>,
    pub jitter_max: Option<String>,
    pub timeout_max: Option<String>,
}

/// Values given on the command line; each `Some` replaces the file's value of the field of
/// the same name. Durations and addresses are strings, parsed (and reported) exactly like
/// the file's. A relative `data_dir` here is relative to the working directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigOverrides {
    /// `cluster`: a cluster name, hashed to the cluster id (replaces `cluster_id` too).
    pub cluster: Option<String>,
    /// `cluster_id`: the cluster id as a number (replaces `cluster` too).
    pub cluster_id: Option<u64>,
    /// `node_id`.
    pub node_id: Option<u64>,
    /// `peers`, each as `ID=PEER_ADDR,HTTP_ADDR` (replaces the whole list).
    pub peers: Option<Vec<String>>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `peer_listen`.
    pub peer_listen: Option<String>,
    /// `http_listen`.
    pub http_listen: Option<String>,
    /// `ttl_min`.
    pub ttl_min: Option<String>,
    /// `ttl_max`.
    pub ttl_max: Option<String>,
    /// `lock_delay`.
    pub lock_delay: Option<String>,
    /// `checkpoint_interval`.
    pub checkpoint_interval: Option<String>,
    /// `heartbeat_interval`.
    pub heartbeat_interval: Option<String>,
    /// `clock_offset_max`.
    pub clock_offset_max: Option<String>,
    /// `drift_bound_ppm`.
    pub drift_bound_ppm: Option<u32>,
    /// `snapshot_every_entries`.
    pub snapshot_every_entries: Option<u64>,
    /// `request_timeout`.
    pub request_timeout: Option<String>,
    /// `log_level`.
    pub log_level: Option<String>,
    /// `log_format` (`text` or `json`).
    pub log_format: Option<String>,
}

/// Replaces `slot` when `value` is given.
fn set<T>(slot: &mut Option<T>, value: &Option<T>)
where
    T: Clone,
{
    if let Some(value) = value {
        *slot = Some(value.clone());
    }
}

/// The file's values with the flags applied; peers given by flag stay strings until
/// [`into_config`]. Numbers too large for TOML's i64 saturate (and are refused later).
pub(super) fn apply_overrides(raw: &mut RawConfig, o: &ConfigOverrides) {
    if o.cluster.is_some() || o.cluster_id.is_some() {
        raw.cluster = o.cluster.clone();
        raw.cluster_id = o.cluster_id.map(saturating_i64);
    }
    set(&mut raw.node_id, &o.node_id.map(saturating_i64));
    set(&mut raw.data_dir, &o.data_dir);
    set(&mut raw.peer_listen, &o.peer_listen);
    set(&mut raw.http_listen, &o.http_listen);
    set(&mut raw.ttl_min, &o.ttl_min);
    set(&mut raw.ttl_max, &o.ttl_max);
    set(&mut raw.lock_delay, &o.lock_delay);
    set(&mut raw.checkpoint_interval, &o.checkpoint_interval);
    set(&mut raw.heartbeat_interval, &o.heartbeat_interval);
    set(&mut raw.clock_offset_max, &o.clock_offset_max);
    set(&mut raw.drift_bound_ppm, &o.drift_bound_ppm.map(i64::from));
    set(&mut raw.snapshot_every_entries, &o.snapshot_every_entries.map(saturating_i64));
    set(&mut raw.request_timeout, &o.request_timeout);
    set(&mut raw.log_level, &o.log_level);
    set(&mut raw.log_format, &o.log_format);
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses a humantime duration for `field`; `default` when absent. Zero is refused later,
/// by validation, so that configurations built in code are checked the same way.
pub(super) fn duration(
    field: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else { return Ok(default) };
    humantime::parse_duration(text.trim()).map_err(|e| ConfigError::BadDuration {
        field: field.to_owned(),
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// A TOML integer that must be a non-negative number fitting `T`.
fn unsigned<T: TryFrom<i64>>(field: &str, value: i64) -> Result<T, ConfigError> {
    T::try_from(value).map_err(|_| ConfigError::invalid(field, format!("{value} is out of range")))
}

/// Parses one `ID=PEER_ADDR,HTTP_ADDR` flag value for field `field`.
pub(super) fn parse_peer_flag(field: &str, text: &str) -> Result<PeerConfig, ConfigError> {
    let bad = || ConfigError::invalid(field, format!("{text:?} is not ID=PEER_ADDR,HTTP_ADDR"));
    let (id, addrs) = text.split_once('=').ok_or_else(bad)?;
    let (peer, http) = addrs.split_once(',').ok_or_else(bad)?;
    let id = id.trim().parse::<u64>().map_err(|_| bad())?;
    let peer_addr = HostPort::parse_field(&format!("{field}.peer_addr"), peer.trim())?;
    let http_addr = HostPort::parse_field(&format!("{field}.http_addr"), http.trim())?;
    Ok(PeerConfig { id, peer_addr, http_addr })
}

/// Reads the file's peers; `peers_flag` (from [`ConfigOverrides::peers`]) replaces them.
fn peers(raw: &RawConfig, peers_flag: Option<&[String]>) -> Result<Vec<PeerConfig>, ConfigError> {
    if let Some(flags) = peers_flag {
        let parsed = flags.iter().enumerate();
        return parsed.map(|(i, text)| parse_peer_flag(&format!("peers[{i}]"), text)).collect();
    }
    let mut out = Vec::with_capacity(raw.peers.len());
    for (i, p) in raw.peers.iter().enumerate() {
        let field = format!("peers[{i}]");
        out.push(PeerConfig {
            id: unsigned(&format!("{field}.id"), p.id)?,
            peer_addr: HostPort::parse_field(&format!("{field}.peer_addr"), &p.peer_addr)?,
            http_addr: HostPort::parse_field(&format!("{field}.http_addr"), &p.http_addr)?,
        });
    }
    Ok(out)
}

/// `cluster` (a name) or `cluster_id` (a number): exactly one of them.
fn cluster(raw: &RawConfig) -> Result<(u64, Option<String>), ConfigError> {
    match (&raw.cluster, raw.cluster_id) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "cluster",
            "give either cluster (a name) or cluster_id (a number), not both",
        )),
        (None, None) => Err(ConfigError::Missing { field: "cluster" }),
        (None, Some(id)) => Ok((unsigned("cluster_id", id)?, None)),
        (Some(name), None) => {
            super::check_cluster_name(name)?;
            Ok((super::cluster_id_from_name(name), Some(name.clone())))
        }
    }
}

/// The `[election]` table; `heartbeat` sizes the phi defaults.
fn election(
    raw: Option<&RawElection>,
    heartbeat: Duration,
) -> Result<ElectionSettings, ConfigError> {
    let empty = RawElection::default();
    let e = raw.unwrap_or(&empty);
    // Phi accrual is the default kind (see `palisade_raft::Config::default_for` for why).
    match e.kind.as_deref().unwrap_or("phi") {
        "fixed" => {
            only_for("fixed", e.threshold.is_some(), "election.threshold")?;
            for (field, given) in [
                ("election.acceptable_pause", &e.acceptable_pause),
                ("election.min_std_deviation", &e.min_std_deviation),
                ("election.jitter_max", &e.jitter_max),
                ("election.timeout_max", &e.timeout_max),
            ] {
                only_for("fixed", given.is_some(), field)?;
            }
            Ok(ElectionSettings::Fixed {
                min: duration("election.min", e.min.as_deref(), defaults::ELECTION_MIN)?,
                max: duration("election.max", e.max.as_deref(), defaults::ELECTION_MAX)?,
            })
        }
        "phi" => {
            // `min`/`max` without a kind most likely mean the fixed election: say so.
            let hint = if e.kind.is_none() {
                " (the default kind; set kind = \"fixed\" for min and max)"
            } else {
                ""
            };
            for (field, given) in [("election.min", &e.min), ("election.max", &e.max)] {
                if given.is_some() {
                    let reason = format!("not a setting of kind = \"phi\"{hint}");
                    return Err(ConfigError::invalid(field, reason));
                }
            }
            let ElectionSettings::Phi {
                threshold,
                acceptable_pause,
                min_std_deviation,
                jitter_max,
                timeout_max,
            } = ElectionSettings::phi_default(heartbeat)
            else {
                unreachable!("phi_default is a phi election")
            };
            Ok(ElectionSettings::Phi {
                threshold: e.threshold.unwrap_or(threshold),
                acceptable_pause: duration(
                    "election.acceptable_pause",
                    e.acceptable_pause.as_deref(),
                    acceptable_pause,
                )?,
                min_std_deviation: duration(
                    "election.min_std_deviation",
                    e.min_std_deviation.as_deref(),
                    min_std_deviation,
                )?,
                jitter_max: duration("election.jitter_max", e.jitter_max.as_deref(), jitter_max)?,
                timeout_max: duration(
                    "election.timeout_max",
                    e.timeout_max.as_deref(),
                    timeout_max,
                )?,
            })
        }
        other => Err(ConfigError::invalid(
            "election.kind",
            format!("{other:?} is neither \"fixed\" nor \"phi\""),
        )),
    }
}

fn only_for(kind: &str, given: bool, field: &str) -> Result<(), ConfigError> {
    if given {
        return Err(ConfigError::invalid(field, format!("not a setting of kind = {kind:?}")));
    }
    Ok(())
}

/// Converts the file-plus-flags into a [`ServerConfig`] (not yet validated). `base_dir` is the
/// directory a relative `data_dir` from the file is taken relative to.
pub(super) fn into_config(
    raw: RawConfig,
    peers_flag: Option<&[String]>,
    base_dir: Option<&Path>,
) -> Result<ServerConfig, ConfigError> {
    let (cluster_id, cluster_name) = cluster(&raw)?;
    let node_id =
        unsigned("node_id", raw.node_id.ok_or(ConfigError::Missing { field: "node_id" })?)?;
    let peers = peers(&raw, peers_flag)?;
    let own = peers.iter().find(|p| p.id == node_id);
    let listen = |field: &str, text: &Option<String>, own: Option<&HostPort>| match text {
        Some(text) => HostPort::parse_field(field, text).map(Some),
        None => Ok(own.cloned()),
    };
    let peer_listen = listen("peer_listen", &raw.peer_listen, own.map(|p| &p.peer_addr))?;
    let http_listen = listen("http_listen", &raw.http_listen, own.map(|p| &p.http_addr))?;
    let (Some(peer_listen), Some(http_listen)) = (peer_listen, http_listen) else {
        let peers = peers.iter().map(|p| p.id).collect();
        return Err(ConfigError::UnknownSelf { node_id, peers });
    };
    let mut data_dir = raw.data_dir.clone().ok_or(ConfigError::Missing { field: "data_dir" })?;
    if let Some(base) = base_dir.filter(|_| data_dir.is_relative()) {
        data_dir = base.join(data_dir);
    }
    let heartbeat_interval =
        duration("heartbeat_interval", raw.heartbeat_interval.as_deref(), defaults::HEARTBEAT)?;
    let log_format = match raw.log_format.as_deref() {
        None => LogFormat::Text,
        Some(text) => text.parse().map_err(|e: String| ConfigError::invalid("log_format", e))?,
    };
    Ok(ServerConfig {
        cluster_id,
        cluster_name,
        node_id,
        peers,
        peer_listen,
        http_listen,
        data_dir,
        ttl_min: duration("ttl_min", raw.ttl_min.as_deref(), defaults::TTL_MIN)?,
        ttl_max: duration("ttl_max", raw.ttl_max.as_deref(), defaults::TTL_MAX)?,
        lock_delay: duration("lock_delay", raw.lock_delay.as_deref(), defaults::LOCK_DELAY)?,
        checkpoint_interval: duration(
            "checkpoint_interval",
            raw.checkpoint_interval.as_deref(),
            defaults::CHECKPOINT_INTERVAL,
        )?,
        pause_detect_threshold: duration(
            "pause_detect_threshold",
            raw.pause_detect_threshold.as_deref(),
            defaults::PAUSE_DETECT_THRESHOLD,
        )?,
        heartbeat_interval,
        election: election(raw.election.as_ref(), heartbeat_interval)?,
        clock_offset_max: duration(
            "clock_offset_max",
            raw.clock_offset_max.as_deref(),
            defaults::CLOCK_OFFSET_MAX,
        )?,
        drift_bound_ppm: match raw.drift_bound_ppm {
            None => defaults::DRIFT_BOUND_PPM,
            Some(ppm) => unsigned("drift_bound_ppm", ppm)?,
        },
        snapshot_every_entries: match raw.snapshot_every_entries {
            None => defaults::SNAPSHOT_EVERY_ENTRIES,
            Some(n) => unsigned("snapshot_every_entries", n)?,
        },
        request_timeout: duration(
            "request_timeout",
            raw.request_timeout.as_deref(),
            defaults::REQUEST_TIMEOUT,
        )?,
        log_level: raw.log_level.clone().unwrap_or_else(|| defaults::LOG_LEVEL.to_owned()),
        log_format,
    })
}
