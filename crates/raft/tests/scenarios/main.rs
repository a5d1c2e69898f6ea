//! Scenario tests of the Raft core on a deterministic in-test network (see `harness`). Each
//! test names the section of the Raft paper ("§") or of Ongaro's thesis ("thesis §") whose
//! behaviour it checks.

mod harness;

mod clocks;
mod determinism;
mod election;
mod faults;
mod membership;
mod reads;
mod replication;
mod snapshot;
mod swarm;
mod transfer;
