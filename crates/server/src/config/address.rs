//! `host:port` addresses as written in a configuration file.
//!
//! A configuration names peers by `host:port` so that it can use DNS names as well as IP
//! literals, but the transport needs a [`SocketAddr`]. Keeping the written form
//! ([`HostPort`]) apart from the resolved one means a config is checked for syntax (and for
//! two nodes given the same address) without touching the network, and resolved once, at
//! start, where a failure is reported with the field that named the address.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest host name accepted, in bytes (the DNS limit).
pub const HOST_BYTES_MAX: usize = 253;

/// An address as written: a host (name, IPv4 literal or bracketed IPv6 literal) and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPort {
    /// The host, as written (an IPv6 literal keeps its brackets); never empty.
    host: String,
    /// The port; never 0.
    port: u16,
}

/// Why a string is not a `host:port` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSyntax {
    /// No `:port` at the end.
    NoPort,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// Nothing before the `:`.
    EmptyHost,
    /// The host is longer than [`HOST_BYTES_MAX`].
    HostTooLong,
    /// The host has a character no host name or IP literal has.
    BadHost,
}

impl fmt::Display for AddressSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressSyntax::NoPort => "no \":port\" at the end",
            AddressSyntax::BadPort => "the port is not a number in 1..=65535",
            AddressSyntax::EmptyHost => "the host is empty",
            AddressSyntax::HostTooLong => "the host is longer than 253 bytes",
            AddressSyntax::BadHost => "the host is not a name, an IPv4 address or [IPv6]",
        })
    }
}

impl HostPort {
    /// Parses `host:port`; `[v6]:port` for IPv6 literals.
    pub fn parse(text: &str) -> Result<HostPort, AddressSyntax> {
        let (host, port) = text.rsplit_once(':').ok_or(AddressSyntax::NoPort)?;
        let port: u16 = port.parse().map_err(|_| AddressSyntax::BadPort)?;
        if port == 0 {
            return Err(AddressSyntax::BadPort);
        }
        if host.is_empty() {
            return Err(AddressSyntax::EmptyHost);
        }
        if host.len() > HOST_BYTES_MAX {
            return Err(AddressSyntax::HostTooLong);
        }
        if !host_is_well_formed(host) {
            return Err(AddressSyntax::BadHost);
        }
        Ok(HostPort { host: host.to_owned(), port })
    }

    /// Parses the address in config field `field`; the error names the field and the text.
    pub fn parse_field(field: &str, text: &str) -> Result<HostPort, ConfigError> {
        HostPort::parse(text).map_err(|reason| ConfigError::BadAddress {
            field: field.to_owned(),
            text: text.to_owned(),
            reason: reason.to_string(),
        })
    }

    /// The host as written.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same address with the host in lower case: two spellings of one address compare
    /// equal after this (DNS names are case-insensitive).
    pub fn normalized(&self) -> HostPort {
        HostPort { host: self.host.to_ascii_lowercase(), port: self.port }
    }

    /// Resolves the address (DNS for names) to its first socket address. Blocking.
    pub fn resolve(&self, field: &str) -> Result<SocketAddr, ConfigError> {
        let failed = |reason: String| ConfigError::Resolve {
            field: field.to_owned(),
            text: self.to_string(),
            reason,
        };
        let mut addrs = self.to_string().to_socket_addrs().map_err(|e| failed(e.to_string()))?;
        addrs.next().ok_or_else(|| failed("no address found".to_owned()))
    }
}

/// Letters, digits, `-`, `.`, `_` for names and IPv4; `[` hex digits, `:`, `.` `]` for IPv6.
fn host_is_well_formed(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else { return false };
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostPort {
    type Err = AddressSyntax;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HostPort::parse(text)
    }
}

impl TryFrom<String> for HostPort {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        HostPort::parse(&text).map_err(|reason| format!("{text:?} is not host:port: {reason}"))
    }
}

impl From<HostPort> for String {
    fn from(address: HostPort) -> String {
        address.to_string()
    }
}

impl From<SocketAddr> for HostPort {
    /// The literal form of a socket address (port 0 is kept: for listeners only).
    fn from(addr: SocketAddr) -> HostPort {
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        HostPort { host, port: addr.port() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_addresses_parse_and_print_back() {
        for text in ["127.0.0.1:7001", "node-1.example.com:80", "[::1]:9000", "LOCALHOST:1"] {
            assert_eq!(HostPort::parse(text).unwrap().to_string(), text);
        }
        let a = HostPort::parse("Node1:7001").unwrap();
        assert_eq!(a.normalized(), HostPort::parse("node1:7001").unwrap());
        assert_eq!(a.port(), 7001);
        assert_eq!(a.host(), "Node1");
    }

    #[test]
    fn each_syntax_error_is_named() {
        assert_eq!(HostPort::parse("127.0.0.1"), Err(AddressSyntax::NoPort));
        assert_eq!(HostPort::parse("host:http"), Err(AddressSyntax::BadPort));
        assert_eq!(HostPort::parse("host:70000"), Err(AddressSyntax::BadPort));
        assert_eq!(HostPort::parse("host:0"), Err(AddressSyntax::BadPort));
        assert_eq!(HostPort::parse(":80"), Err(AddressSyntax::EmptyHost));
        assert_eq!(HostPort::parse("a b:80"), Err(AddressSyntax::BadHost));
        assert_eq!(HostPort::parse("::1:80"), Err(AddressSyntax::BadHost));
        assert_eq!(HostPort::parse("[::1:80"), Err(AddressSyntax::BadHost));
        let long = format!("{}:80", "a".repeat(HOST_BYTES_MAX + 1));
        assert_eq!(HostPort::parse(&long), Err(AddressSyntax::HostTooLong));
    }

    #[test]
    fn literals_resolve_without_dns() {
        let a = HostPort::parse("127.0.0.1:7001").unwrap();
        assert_eq!(a.resolve("x").unwrap(), "127.0.0.1:7001".parse().unwrap());
        let b = HostPort::parse("[::1]:7001").unwrap();
        assert_eq!(b.resolve("x").unwrap(), "[::1]:7001".parse().unwrap());
        let from: HostPort = "[::1]:7001".parse::<SocketAddr>().unwrap().into();
        assert_eq!(from, b);
    }
}
