//! How a client is set up, and every limit of the client in one place.
//!
//! Why limits here too, when the server checks everything: a client that sends a 10 MB key
//! learns of its mistake late and vaguely (a 413, or a refusal after a round trip). Checking
//! names, values, TTLs and waits against the same constants before anything is sent gives a
//! [`Error::BadInput`] that names the limit. The client's own inputs (endpoint lists, answers
//! read from the network) have named bounds as well.

use std::time::Duration;

use palisade_lock::{KEY_BYTES_MAX, LOCK_NAME_BYTES_MAX, TTL_MAX, TTL_MIN, VALUE_BYTES_MAX};

use crate::error::Error;

/// Most endpoints a client is given (Raft's voter limit: more cannot be members).
pub const ENDPOINTS_MAX: usize = palisade_node::client_core::SERVERS_MAX;
/// Longest endpoint string, in bytes.
pub const ENDPOINT_BYTES_MAX: usize = 256;
/// Largest answer read from a node, in bytes (a status with thousands of sessions fits).
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest total wait for a lock; longer waits are split into long polls of at most
/// [`palisade_node::config::LONG_POLL_WAIT_MAX`].
pub const LOCK_WAIT_MAX: Duration = Duration::from_secs(24 * 3600);
/// Longest `connect_timeout`, `attempt_timeout` and `op_timeout`.
pub const CLIENT_TIMEOUT_MAX: Duration = palisade_node::client_core::OP_TIMEOUT_MAX;
/// The default session TTL.
pub const TTL_DEFAULT: Duration = Duration::from_secs(10);
/// The default bound on one HTTP exchange with one node (beyond its long poll).
pub const ATTEMPT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(1);
/// The default bound on one operation across all its retries (beyond its long poll).
pub const OP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// The default bound on the first contact with each endpoint.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);

/// How a [`crate::Client`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// HTTP endpoints of some members (`host:port` or `http://host:port`); the others are
    /// learned from the first one that answers.
    pub endpoints: Vec<String>,
    /// The TTL of the session the client opens.
    pub ttl: Duration,
    /// One HTTP exchange with one node; past it the next node is tried (same request id).
    pub attempt_timeout: Duration,
    /// One operation across all its retries; past it a mutation's outcome is `Unknown`.
    pub op_timeout: Duration,
    /// The first contact with each endpoint (fetching the member list).
    pub connect_timeout: Duration,
    /// The assumed bound on clock rate drift, for the local lease (the cluster's).
    pub drift_bound_ppm: u32,
}

impl ClientOptions {
    /// `endpoints` with the defaults: a 10 s session TTL, 1 s attempts, 10 s operations, 2 s
    /// to connect, a 500 ppm drift bound.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> ClientOptions {
        ClientOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ttl: TTL_DEFAULT,
            attempt_timeout: ATTEMPT_TIMEOUT_DEFAULT,
            op_timeout: OP_TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            drift_bound_ppm: palisade_clock::DRIFT_BOUND_PPM_DEFAULT,
        }
    }

    /// The same options with session TTL `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> ClientOptions {
        self.ttl = ttl;
        self
    }

    /// Checks every field; returns the endpoints as base URLs (`http://host:port`).
    pub fn validate(&self) -> Result<Vec<String>, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::BadInput("no endpoints given".into()));
        }
        if self.endpoints.len() > ENDPOINTS_MAX {
            let n = self.endpoints.len();
            return Err(bad(format!(
                "{n} endpoints given; at most {ENDPOINTS_MAX} (ENDPOINTS_MAX)"
            )));
        }
        if self.ttl < TTL_MIN || self.ttl > TTL_MAX {
            let ttl = self.ttl;
            return Err(bad(format!("session TTL {ttl:?} is outside [{TTL_MIN:?}, {TTL_MAX:?}]")));
        }
        for (name, value) in [
            ("attempt timeout", self.attempt_timeout),
            ("operation timeout", self.op_timeout),
            ("connect timeout", self.connect_timeout),
        ] {
            if value.is_zero() || value > CLIENT_TIMEOUT_MAX {
                return Err(bad(format!(
                    "{name} {value:?} is outside (0, {CLIENT_TIMEOUT_MAX:?}]"
                )));
            }
        }
        if self.attempt_timeout > self.op_timeout {
            return Err(bad("the attempt timeout is longer than the operation timeout".into()));
        }
        let mut urls: Vec<String> = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            let url = endpoint_url(endpoint)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        Ok(urls)
    }
}

fn bad(message: String) -> Error {
    Error::BadInput(message)
}

/// `host:port` or `http://host:port[/]` as `http://host:port`.
pub fn endpoint_url(endpoint: &str) -> Result<String, Error> {
    let trimmed = endpoint.trim();
    if trimmed.len() > ENDPOINT_BYTES_MAX {
        let n = trimmed.len();
        return Err(bad(format!("endpoint of {n} bytes; at most {ENDPOINT_BYTES_MAX}")));
    }
    if trimmed.starts_with("https://") {
        return Err(bad(format!("endpoint {trimmed:?}: TLS is not supported; use http://")));
    }
    let rest = trimmed.strip_prefix("http://").unwrap_or(trimmed).trim_end_matches('/');
    let valid = rest.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if !valid {
        return Err(bad(format!("endpoint {endpoint:?} is not HOST:PORT or http://HOST:PORT")));
    }
    Ok(format!("http://{rest}"))
}

/// Checks a lock name against [`LOCK_NAME_BYTES_MAX`].
pub fn check_lock_name(name: &str) -> Result<(), Error> {
    check_name("lock name", name, LOCK_NAME_BYTES_MAX)
}

/// Checks a key against [`KEY_BYTES_MAX`].
pub fn check_key(key: &str) -> Result<(), Error> {
    check_name("key", key, KEY_BYTES_MAX)
}

/// Checks a value against [`VALUE_BYTES_MAX`].
pub fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > VALUE_BYTES_MAX {
        let n = value.len();
        return Err(bad(format!(
            "value of {n} bytes; at most {VALUE_BYTES_MAX} (VALUE_BYTES_MAX)"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), Error> {
    if name.is_empty() {
        return Err(bad(format!("empty {what}")));
    }
    if name.len() > max {
        let n = name.len();
        return Err(bad(format!("{what} of {n} bytes; at most {max}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_and_checked() {
        assert_eq!(endpoint_url("127.0.0.1:7101").unwrap(), "http://127.0.0.1:7101");
        assert_eq!(endpoint_url("http://localhost:7101/").unwrap(), "http://localhost:7101");
        for bad in ["", "localhost", "http://:80", "h:0", "h:99999", "https://h:1", "a/b:1"] {
            assert!(matches!(endpoint_url(bad), Err(Error::BadInput(_))), "{bad}");
        }
        let long = format!("h{}:1", "x".repeat(ENDPOINT_BYTES_MAX));
        assert!(endpoint_url(&long).is_err());
    }

    #[test]
    fn options_are_checked() {
        let ok = ClientOptions::new(["a:1", "http://a:1", "b:2"]);
        assert_eq!(ok.validate().unwrap(), vec!["http://a:1", "http://b:2"]);
        assert!(ClientOptions::new(Vec::<String>::new()).validate().is_err());
        assert!(ok.clone().with_ttl(Duration::from_millis(1)).validate().is_err());
        let mut slow = ok.clone();
        slow.attempt_timeout = Duration::from_secs(60);
        assert!(slow.validate().is_err());
        let many: Vec<String> = (1..=ENDPOINTS_MAX + 1).map(|i| format!("h:{i}")).collect();
        assert!(ClientOptions::new(many).validate().is_err());
    }

    #[test]
    fn names_and_values_are_bounded() {
        assert!(check_key("k").is_ok());
        assert!(check_key("").is_err());
        assert!(check_lock_name(&"l".repeat(LOCK_NAME_BYTES_MAX + 1)).is_err());
        assert!(check_value(&vec![0; VALUE_BYTES_MAX + 1]).is_err());
    }
}
