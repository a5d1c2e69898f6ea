//! Writing a configuration back as a TOML file that [`ServerConfig::load`] reads unchanged.
//!
//! `palisade dev` builds its nodes' configurations in code and starts each node as a child
//! process with `server --config FILE`, so the files it writes are the ones a person would
//! copy to start a real cluster: every field written out, durations in humantime, strings
//! quoted by the TOML crate (so any path survives).

use std::fmt::Write as _;
use std::time::Duration;

use super::{ConfigError, ElectionSettings, ServerConfig};

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn duration(d: Duration) -> String {
    quoted(&humantime::format_duration(d).to_string())
}

impl ServerConfig {
    /// The configuration as a TOML file; [`ServerConfig::load`] of it gives this configuration
    /// back (a relative `data_dir` is then relative to the file's directory). Refused only for
    /// a cluster given by an id above `i64::MAX` without a name (TOML integers are `i64`).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line("# Written by palisade; see docs/examples/node1.toml for every field.".into());
        match &self.cluster_name {
            Some(name) => line(format!("cluster = {}", quoted(name))),
            None if i64::try_from(self.cluster_id).is_ok() => {
                line(format!("cluster_id = {}", self.cluster_id))
            }
            None => {
                let reason = format!("{} does not fit a TOML integer (i64)", self.cluster_id);
                return Err(ConfigError::invalid("cluster_id", reason));
            }
        }
        line(format!("node_id = {}", self.node_id));
        line(format!("data_dir = {}", quoted(&self.data_dir.to_string_lossy())));
        line(format!("peer_listen = {}", quoted(&self.peer_listen.to_string())));
        line(format!("http_listen = {}", quoted(&self.http_listen.to_string())));
        for (field, value) in [
            ("ttl_min", self.ttl_min),
            ("ttl_max", self.ttl_max),
            ("lock_delay", self.lock_delay),
            ("checkpoint_interval", self.checkpoint_interval),
            ("pause_detect_threshold", self.pause_detect_threshold),
            ("heartbeat_interval", self.heartbeat_interval),
            ("clock_offset_max", self.clock_offset_max),
            ("request_timeout", self.request_timeout),
        ] {
            line(format!("{field} = {}", duration(value)));
        }
        line(format!("drift_bound_ppm = {}", self.drift_bound_ppm));
        line(format!("snapshot_every_entries = {}", self.snapshot_every_entries));
        line(format!("log_level = {}", quoted(&self.log_level)));
        line(format!("log_format = {}", quoted(&self.log_format.to_string())));
        line(String::new());
        line("[election]".into());
        match self.election {
            ElectionSettings::Fixed { min, max } => {
                line("kind = \"fixed\"".into());
                line(format!("min = {}", duration(min)));
                line(format!("max = {}", duration(max)));
            }
            ElectionSettings::Phi {
                threshold,
                acceptable_pause,
                min_std_deviation,
                jitter_max,
                timeout_max,
            } => {
                line("kind = \"phi\"".into());
                line(format!("threshold = {}", toml::Value::Float(threshold)));
                line(format!("acceptable_pause = {}", duration(acceptable_pause)));
                line(format!("min_std_deviation = {}", duration(min_std_deviation)));
                line(format!("jitter_max = {}", duration(jitter_max)));
                line(format!("timeout_max = {}", duration(timeout_max)));
            }
        }
        for peer in &self.peers {
            let _ = write!(
                out,
                "\n[[peers]]\nid = {}\npeer_addr = {}\nhttp_addr = {}\n",
                peer.id,
                quoted(&peer.peer_addr.to_string()),
                quoted(&peer.http_addr.to_string())
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOverrides;

    #[test]
    fn a_written_configuration_loads_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("with \"quotes\" and spaces");
        let mut configs = ServerConfig::dev_cluster(&base, 3, 17200).unwrap();
        configs[1].election = ElectionSettings::Fixed {
            min: Duration::from_millis(1500),
            max: Duration::from_secs(3),
        };
        configs[2].cluster_name = None;
        assert!(configs[2].to_toml().is_err(), "a hashed id does not fit TOML's i64");
        configs[2].cluster_id = 12345;
        configs[2].request_timeout = Duration::from_millis(1500);
        for config in configs {
            let path = dir.path().join(format!("node{}.toml", config.node_id));
            std::fs::write(&path, config.to_toml().unwrap()).unwrap();
            let loaded = ServerConfig::load(Some(&path), &ConfigOverrides::default()).unwrap();
            assert_eq!(loaded, config, "{}", config.to_toml().unwrap());
        }
    }
}
