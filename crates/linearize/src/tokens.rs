//! Fencing tokens across all locks: strictly increasing in real time, never shared.
//!
//! The per-lock model checks tokens within one lock. palisade promises more: a token is the log
//! index of its grant, so tokens strictly increase across *all* locks, and two locks never
//! share a token. Linearizability per lock cannot see that (the locks are independent
//! objects), so it is checked here, on the whole history, and soundly — from what clients saw:
//!
//! * every grant of token `t` (every acquire that returned `t`: the grant and its reentrant
//!   repeats) names the same lock;
//! * the grant of `t` happened no later than the earliest return of an acquire that returned
//!   `t`, and no earlier than the earliest call of an acquire that could have caused it: one
//!   that returned `t`, or an acquire of the same lock by the same session whose outcome is
//!   unknown. If grant A surely happened before grant B (A's latest possible time is strictly
//!   before B's earliest) then `token(A) < token(B)`.
//!
//! Grants whose order real time does not settle are not compared, so a correct service is
//! never blamed for the order a concurrent pair happened to take.

use std::collections::{BTreeMap, HashMap};

use crate::history::Operation;
use crate::lock::{LockInput, LockOp, LockOutput};

/// A violation of the global token order, naming operations by their index in the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenViolation {
    /// Two acquires of different locks returned the same token.
    Shared {
        /// The token.
        token: u64,
        /// An acquire that returned it.
        first: usize,
        /// An acquire of another lock that returned it too.
        second: usize,
    },
    /// A grant that surely came later carries a smaller token.
    OutOfOrder {
        /// The acquire that returned the larger token, and returned first.
        earlier: usize,
        /// The acquire (or one that could have caused the grant) called after that return,
        /// whose grant carries the smaller token.
        later: usize,
    },
}

/// What is known about one token's grant.
struct Grant {
    lock_op: usize,
    /// (time, op) of the earliest return of an acquire that returned the token.
    first_ret: (u64, usize),
    /// (time, op) of the earliest call that could have caused the grant.
    first_call: (u64, usize),
}

/// Checks the global token order of a lock history (see the module doc).
pub fn check_tokens(history: &[Operation<LockInput, LockOutput>]) -> Result<(), TokenViolation> {
    let mut unknown_calls: HashMap<(&str, u64), (u64, usize)> = HashMap::new();
    for (i, op) in history.iter().enumerate() {
        if op.input.op == LockOp::Acquire && op.is_unknown() {
            let entry = unknown_calls.entry((op.input.lock.as_str(), op.input.session));
            let first = entry.or_insert((op.call, i));
            *first = (*first).min((op.call, i));
        }
    }
    let mut grants: BTreeMap<u64, Grant> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        let (Some(&LockOutput::Granted { token }), Some(ret)) = (op.output(), op.ret()) else {
            continue;
        };
        if op.input.op != LockOp::Acquire {
            continue;
        }
        let grant = grants.entry(token).or_insert(Grant {
            lock_op: i,
            first_ret: (ret, i),
            first_call: (op.call, i),
        });
        if history[grant.lock_op].input.lock != op.input.lock {
            return Err(TokenViolation::Shared { token, first: grant.lock_op, second: i });
        }
        grant.first_ret = grant.first_ret.min((ret, i));
        grant.first_call = grant.first_call.min((op.call, i));
        if let Some(&unknown) = unknown_calls.get(&(op.input.lock.as_str(), op.input.session)) {
            grant.first_call = grant.first_call.min(unknown);
        }
    }
    // Walk tokens from the largest down, keeping the earliest return among larger tokens.
    let mut earliest_larger: Option<(u64, usize)> = None;
    for grant in grants.values().rev() {
        if let Some((ret, earlier)) = earliest_larger
            && ret < grant.first_call.0
        {
            return Err(TokenViolation::OutOfOrder { earlier, later: grant.first_call.1 });
        }
        earliest_larger = Some(earliest_larger.map_or(grant.first_ret, |e| e.min(grant.first_ret)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(
        lock: &str,
        session: u64,
        call: u64,
        ret: u64,
        token: u64,
    ) -> Operation<LockInput, LockOutput> {
        Operation::returned(
            session,
            LockInput::new(lock, session, LockOp::Acquire),
            call,
            ret,
            LockOutput::Granted { token },
        )
    }

    #[test]
    fn increasing_tokens_across_locks_pass() {
        let h = vec![grant("a", 1, 0, 10, 5), grant("b", 2, 20, 30, 7), grant("a", 1, 40, 50, 5)];
        assert_eq!(check_tokens(&h), Ok(()));
    }

    #[test]
    fn a_later_grant_with_a_smaller_token_is_caught() {
        let h = vec![grant("a", 1, 0, 10, 9), grant("b", 2, 20, 30, 7)];
        assert_eq!(check_tokens(&h), Err(TokenViolation::OutOfOrder { earlier: 0, later: 1 }));
    }

    #[test]
    fn concurrent_grants_are_not_compared() {
        let h = vec![grant("a", 1, 0, 30, 9), grant("b", 2, 10, 20, 7)];
        assert_eq!(check_tokens(&h), Ok(()));
    }

    #[test]
    fn a_reentrant_repeat_of_an_old_grant_is_not_a_new_grant() {
        // a:5 granted first, b:7 later, then the holder of a re-acquires a and gets 5 again.
        let h = vec![grant("a", 1, 0, 10, 5), grant("b", 2, 20, 30, 7), grant("a", 1, 40, 50, 5)];
        assert_eq!(check_tokens(&h), Ok(()));
    }

    #[test]
    fn an_unknown_acquire_may_have_caused_a_grant_seen_later() {
        // Session 1's acquire of "a" timed out at 0..; b:9 returned at 10; later a reentrant
        // acquire of "a" by session 1 returns 5: the grant of 5 may have happened at time 1.
        let mut h = vec![grant("b", 2, 5, 10, 9), grant("a", 1, 40, 50, 5)];
        h.push(Operation::unknown(1, LockInput::new("a", 1, LockOp::Acquire), 1));
        assert_eq!(check_tokens(&h), Ok(()));
        h.pop();
        assert_eq!(check_tokens(&h), Err(TokenViolation::OutOfOrder { earlier: 0, later: 1 }));
    }

    #[test]
    fn a_token_shared_by_two_locks_is_caught() {
        let h = vec![grant("a", 1, 0, 10, 5), grant("b", 2, 0, 10, 5)];
        assert_eq!(check_tokens(&h), Err(TokenViolation::Shared { token: 5, first: 0, second: 1 }));
    }
}
