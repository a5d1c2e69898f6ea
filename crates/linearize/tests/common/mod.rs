//! Shared by the integration tests and the benchmark example: a generator of concurrent
//! histories recorded from a real (sequential) key-value store, and a brute-force
//! linearizability oracle for small histories.
#![allow(dead_code)]

pub mod generate;
pub mod oracle;
pub mod reference;
