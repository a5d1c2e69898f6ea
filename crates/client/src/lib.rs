//! palisade-client: the Rust client of a palisade cluster.
//!
//! Why it is more than an HTTP wrapper: the faults of the chapter hit the client first. A
//! request or its answer can be lost, so the client retries, always with the *same* request id
//! (client id, sequence), which the replicated state machine runs at most once. The node it
//! talks to may not lead, or stop leading mid-request, so it follows the `NotLeader` hints.
//! It may never learn whether a mutation ran; then it says [`Outcome::Unknown`] and never
//! guesses. And it must know, without asking anybody, whether its locks may still be used: it
//! keeps a conservative local lease, counted from when each keepalive was *sent* and shortened
//! by the drift bound, renewed by a background task.
//!
//! All of that protocol lives in the sans-IO [`palisade_node::ClientCore`] (tested in the
//! simulator under every fault). This crate is its tokio driver ([`driver`]): it carries the
//! core's requests as `POST /v1/rpc` to the members' HTTP endpoints, feeds the answers back,
//! sleeps until the core's next timer, and turns the outcomes into typed results.
//!
//! ```no_run
//! # async fn example() -> Result<(), palisade_client::Error> {
//! use std::time::Duration;
//! use palisade_client::{Client, ClientOptions, Outcome};
//!
//! let client = Client::connect(ClientOptions::new(["127.0.0.1:7101"])).await?;
//! if let Outcome::Done(guard) = client.lock("demo", Duration::from_secs(30)).await? {
//!     println!("token {}", guard.token());
//!     client.put("greeting", "hello", Some(guard.fence())).await?;
//!     guard.release().await?;
//! }
//! # Ok(()) }
//! ```

mod client;
pub mod driver;
mod error;
mod guard;
mod http;
pub mod options;
mod seed;

pub use client::{Client, DrainResult, NodeReport, TimeReading};
pub use error::Error;
pub use guard::LockGuard;
pub use options::{
    ATTEMPT_TIMEOUT_DEFAULT, CLIENT_TIMEOUT_MAX, CONNECT_TIMEOUT_DEFAULT, ClientOptions,
    ENDPOINT_BYTES_MAX, ENDPOINTS_MAX, LOCK_WAIT_MAX, OP_TIMEOUT_DEFAULT, RESPONSE_BYTES_MAX,
    TTL_DEFAULT,
};
pub use palisade_lock::{Expect, Fence, LeaseState, LockInfo, Outcome, SessionId, Token, Value};
pub use palisade_node::raft::NodeId;
