//! palisade-server: the thin tokio driver around palisade's sans-IO core.
//!
//! Everything clever lives in the core crates (raft, lock, clock, detector, storage, node),
//! which never read a clock, open a socket or touch a file except through a trait. This crate
//! is the other side of those traits: the only place (with the client and the binary) that
//! may use tokio, the OS clocks and sockets. It is kept thin on purpose, so that what the
//! simulator tests is what runs; each module is one piece of plumbing:
//!
//! - [`clock`]: [`SystemClock`], the OS implementation of [`palisade_clock::Clock`];
//! - [`config`]: [`ServerConfig`], loaded from TOML and flags and validated at start, with the
//!   mapping to the core's configurations and the settings fingerprint of the handshake;
//! - [`disk`]: [`TimedDisk`], the real data directory with every fsync timed;
//! - [`transport`]: [`PeerTransport`], framed TCP between the nodes with the handshake,
//!   bounded queues and reconnection;
//! - [`node_loop`]: the one thread that owns the core, batches its inputs (one fsync per
//!   batch) and moves its outputs;
//! - [`api`]: the HTTP/JSON API (`docs/http-api.md`, `docs/openapi.json`);
//! - [`metrics`]: [`Metrics`], the Prometheus families the node loop sets;
//! - [`status`]: [`StatusView`], the JSON of `GET /v1/status`, and the status page's router;
//! - [`server`]: [`Server`], start and graceful stop of one node; [`run`] for `palisade server`;
//! - [`dev`]: `palisade dev`, a local cluster of child processes.

pub mod api;
pub mod clock;
pub mod config;
pub mod dev;
pub mod disk;
pub mod error;
pub mod metrics;
pub mod node_loop;
pub mod server;
pub mod status;
pub mod transport;

pub use clock::SystemClock;
pub use config::{
    ConfigError, ConfigOverrides, ElectionSettings, HostPort, LogFormat, PeerConfig, ServerConfig,
};
pub use disk::{FsyncCounter, TimedDisk};
pub use error::ServerError;
pub use metrics::Metrics;
pub use server::{Server, ShutdownReport, init_logging, run, run_blocking};
pub use status::{StatusView, status_page_router};
pub use transport::{Inbound, PeerTransport, TransportConfig, TransportError, TransportStats};
