//! Reference specifications for the oracle, written from palisade's documentation and
//! independently of the models under test: plain states, explicit nondeterminism.

use palisade_linearize::{KvInput, KvOp, KvOutput, LockInput, LockOp, LockOutput};

/// Successors of a register state (`None` = absent).
pub fn kv(
    state: &Option<u8>,
    input: &KvInput<u8>,
    output: Option<&KvOutput<u8>>,
) -> Vec<Option<u8>> {
    let cur = *state;
    let after = match &input.op {
        KvOp::Read => cur,
        KvOp::Write(v) => Some(*v),
        KvOp::Cas { expected, new } if *expected == cur => Some(*new),
        KvOp::Cas { .. } => cur,
        KvOp::Delete => None,
    };
    let Some(output) = output else { return vec![after] };
    let legal = match (&input.op, output) {
        (KvOp::Read, KvOutput::Read(v)) => *v == cur,
        (KvOp::Write(_), KvOutput::Written) => true,
        (KvOp::Cas { expected, .. }, KvOutput::Swapped) => *expected == cur,
        (KvOp::Cas { expected, .. }, KvOutput::Mismatch) => *expected != cur,
        (KvOp::Delete, KvOutput::Deleted { existed }) => existed.is_none_or(|e| e == cur.is_some()),
        _ => false,
    };
    if legal { vec![after] } else { Vec::new() }
}

/// A lock as palisade documents it, with concrete tokens.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefLock {
    /// (session, token) of the current grant.
    pub holder: Option<(u64, u64)>,
    /// Released by an expiry and not granted since: "busy" (lock-delay) is possible.
    pub delayed: bool,
    /// The last token granted, if any (any token, 0 included, may come first).
    pub last_token: Option<u64>,
}

/// Tokens an unobserved grant may take: enough above the observed ones (at most 4 in the
/// tests) for any sequence of 7 operations.
pub const TOKEN_DOMAIN_MAX: u64 = 12;

/// Successors of a lock state; expiry only through `Expire` (add [`lose`] for silent expiry).
pub fn lock(state: &RefLock, input: &LockInput, output: Option<&LockOutput>) -> Vec<RefLock> {
    let s = input.session;
    let mine = state.holder.is_some_and(|(h, _)| h == s);
    let grant = |t: u64| RefLock { holder: Some((s, t)), delayed: false, last_token: Some(t) };
    let fresh_min = state.last_token.map_or(0, |t| t + 1);
    let same = vec![*state];
    let none = Vec::new();
    match (&input.op, output) {
        (LockOp::Acquire, Some(LockOutput::Granted { token })) => match state.holder {
            None if *token >= fresh_min => vec![grant(*token)],
            Some((h, t)) if h == s && t == *token => same,
            _ => none,
        },
        (LockOp::Acquire, Some(LockOutput::Busy)) => {
            let busy = match state.holder {
                Some((h, _)) => h != s,
                None => state.delayed,
            };
            if busy { same } else { none }
        }
        (LockOp::Acquire, None) => match state.holder {
            None => (fresh_min..=TOKEN_DOMAIN_MAX).map(grant).collect(),
            Some(_) => same,
        },
        (LockOp::Release, Some(LockOutput::Released)) if mine => {
            vec![RefLock { holder: None, delayed: false, ..*state }]
        }
        (LockOp::Release, Some(LockOutput::NotHolder)) if !mine => same,
        (LockOp::Release, None) if mine => vec![RefLock { holder: None, delayed: false, ..*state }],
        (LockOp::Release, None) => same,
        (LockOp::FencedWrite { token }, Some(LockOutput::Accepted))
            if state.holder.is_some_and(|(_, t)| t == *token) =>
        {
            same
        }
        (LockOp::FencedWrite { token }, Some(LockOutput::Rejected))
            if state.holder.is_none_or(|(_, t)| t != *token) =>
        {
            same
        }
        (LockOp::FencedWrite { .. }, None) => same,
        (LockOp::Expire, Some(LockOutput::Expired) | None) if mine => lose(state),
        (LockOp::Expire, Some(LockOutput::Expired) | None) => same,
        _ => none,
    }
}

/// The holder's session expires (silently).
pub fn lose(state: &RefLock) -> Vec<RefLock> {
    match state.holder {
        Some(_) => vec![RefLock { holder: None, delayed: true, ..*state }],
        None => Vec::new(),
    }
}

/// The initial lock.
pub const LOCK_INIT: RefLock = RefLock { holder: None, delayed: false, last_token: None };
