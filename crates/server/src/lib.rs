//! palisade-server: the thin tokio driver around palisade's sans-IO core.
//!
//! Everything clever lives in the core crates (raft, lock, clock, detector, storage), which
//! never read a clock, open a socket or touch a file except through a trait. This crate is
//! the other side of those traits: the only place (with the client and the binary) that may
//! use tokio, the OS clocks and sockets. It is kept thin on purpose, so that what the
//! simulator tests is what runs; each module is one piece of plumbing:
//!
//! - [`clock`]: [`SystemClock`], the OS implementation of [`palisade_clock::Clock`];
//! - [`config`]: [`ServerConfig`], loaded from TOML and flags and validated at start, with the
//!   mapping to the core's configurations and the settings fingerprint of the handshake;
//! - [`transport`]: [`PeerTransport`], framed TCP between the nodes with the handshake,
//!   bounded queues and reconnection;
//! - [`metrics`]: [`Metrics`], the Prometheus families the node loop sets;
//! - [`status`]: [`StatusView`], the JSON of `GET /v1/status`, and the status page's router.
//!
//! The node loop, the HTTP API, the client and the CLI are built on top of these.

pub mod clock;
pub mod config;
pub mod metrics;
pub mod status;
pub mod transport;

pub use clock::SystemClock;
pub use config::{
    ConfigError, ConfigOverrides, ElectionSettings, HostPort, LogFormat, PeerConfig, ServerConfig,
};
pub use metrics::Metrics;
pub use status::{StatusView, status_page_router};
pub use transport::{Inbound, PeerTransport, TransportConfig, TransportError, TransportStats};
