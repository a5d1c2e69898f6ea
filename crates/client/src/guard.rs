//! [`LockGuard`]: a held lock, its fencing token, and whether it may be used right now.
//!
//! Why both a token and a state: the state (`Held → Jeopardy → Lost`, from the conservative
//! local lease) tells the holder when to stop *starting* work, and `is_safe_now()` is checked
//! against the lease at the moment it is called. Neither covers a pause between the check and
//! the write it guards — nothing on the client can. That is what the fencing token is for:
//! attach [`LockGuard::fence`] to every write, and the storage rejects it once a newer grant
//! exists.

use palisade_lock::{Fence, LeaseState, Outcome, SessionId, Token};
use tokio::sync::watch;

use crate::client::Client;
use crate::driver::now;
use crate::error::Error;

/// A lock held by this client's session. Dropping it does not release the lock (the session
/// keeps it until [`LockGuard::release`], the session's close, or its expiry).
#[derive(Debug)]
pub struct LockGuard {
    client: Client,
    lock: String,
    token: Token,
    session: SessionId,
    state: watch::Receiver<LeaseState>,
}

impl LockGuard {
    pub(crate) fn new(client: Client, lock: String, token: Token, session: SessionId) -> Self {
        let state = {
            let state = client.shared.state();
            match &state.lease {
                Some((s, tx)) if *s == session => tx.subscribe(),
                _ => watch::channel(LeaseState::Lost).1,
            }
        };
        LockGuard { client, lock, token, session, state }
    }

    /// The lock's name.
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// The grant's fencing token: strictly greater than every earlier grant's, of any lock.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The holding session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The fence to attach to every write this lock guards.
    pub fn fence(&self) -> Fence {
        Fence { lock: self.lock.clone(), token: self.token }
    }

    /// Whether the lock may be used now: still held by this session, and the local lease
    /// (counted from the keepalive's send, shortened by the drift bound) has not run out. A
    /// pause after this call is not covered: the storage must check the fence.
    pub fn is_safe_now(&self) -> bool {
        let state = self.client.shared.state();
        state.core.session() == Some(self.session)
            && state.core.fence(&self.lock, now()).is_ok_and(|f| f.token == self.token)
    }

    /// The state now: `Held`, `Jeopardy` (renewal late: finish, don't start) or `Lost`
    /// (final).
    pub fn state(&self) -> LeaseState {
        let state = self.client.shared.state();
        if state.core.session() != Some(self.session) || state.core.guard(&self.lock).is_none() {
            return LeaseState::Lost;
        }
        state.core.lease_state(now()).unwrap_or(LeaseState::Lost)
    }

    /// A watch of the session lease's state: `Held → Jeopardy → Lost` (`Jeopardy` may go back
    /// to `Held` when a late keepalive is acknowledged; `Lost` is final).
    pub fn watch(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }

    /// Waits until the lock is lost (the session's lease ran out, or the server ended it).
    pub async fn lost(&self) {
        let mut state = self.state.clone();
        // An error means the client shut down: the lock is lost to this process too.
        let _ = state.wait_for(|s| *s == LeaseState::Lost).await;
    }

    /// Releases the lock. `Unknown` if the client could not learn whether the release ran
    /// (the lock is then released at the latest when the session expires).
    pub async fn release(self) -> Result<Outcome<()>, Error> {
        let op = palisade_node::UserOp::Release { lock: self.lock.clone() };
        Ok(self.client.call(op).await?.map(|_| ()))
    }
}
