//! The clients' workload: what each simulated client does, and the lab's client-side faults.
//!
//! Every client runs the life of a careful lock user: it opens a session, takes locks (try or
//! blocking, then waits for the grant), writes under them — to palisade's kv with a fence, and
//! to both external stores with the grant's token — reads, compare-and-sets, releases, and now
//! and then closes its session. A guarded write checks the lease right before sending, inside
//! one handler call; the lab can pause the client exactly there (`check-write-pauses`), which
//! is the chapter's lease code example: the check passed, the process stopped, the write left
//! long after the lease ended. Other lab faults: clients that stop renewing their session for a
//! while (`quiet-clients`: a stuck keepalive thread), and writes that present a remembered
//! token of an earlier grant (`stale-tokens`: an application that cached its token).
//!
//! Between handler calls the workload also samples what each client believes — "my session
//! is live", "I hold lock L with token t" — for the lease-sanity checker.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use palisade_linearize::{KvOp, LockOp};
use palisade_node::lock::{Expect, Fence};
use palisade_node::{Consistency, UserOp};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::lab::checkers::LabCheckers;
use crate::lab::history::{Bytes, OpSpec, Recorder};
use crate::lab::options::{LabSeed, nanos};
use crate::service::{Action, ClientObs, Msg, Obs, Service, act};
use crate::{ProcId, Simulation};

/// Free kv keys (no lock guards them).
const FREE_KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// The long-poll bound of blocking acquires and waits.
const WAIT: Duration = Duration::from_secs(1);
/// Store write ids start here (apart from the client process's own).
const STORE_WRITE_ID_BASE: u64 = 1 << 40;

/// The kv key fenced by lock `lock` (`L3` guards `f3`).
pub(crate) fn fenced_key(lock: &str) -> String {
    format!("f{}", &lock[1..])
}

/// The store key guarded by lock `lock` (`L3` guards `s3`).
pub(crate) fn store_key(lock: &str) -> String {
    format!("s{}", &lock[1..])
}

/// The lock guarding store or kv key `key`.
pub(crate) fn lock_of_key(key: &str) -> String {
    format!("L{}", &key[1..])
}

/// One client's driver.
#[derive(Debug)]
struct Driver {
    proc: ProcId,
    next_op_at: u64,
    next_write_at: u64,
    /// The last token this client held for each lock (survives its crashes: "its own disk").
    remembered: BTreeMap<String, u64>,
    /// Grants it asked to give up (release, close): lock -> tokens.
    relinquished: BTreeMap<String, BTreeSet<u64>>,
    /// Sessions it closed.
    closed: BTreeSet<u64>,
    quiet_until: Option<u64>,
    counter: u64,
    /// Values it wrote, for compare-and-set.
    written: Vec<Bytes>,
}

impl Driver {
    /// Whether it asked to give up the grant of `lock` with `token`.
    fn relinquished(&self, lock: &str, token: u64) -> bool {
        self.relinquished.get(lock).is_some_and(|tokens| tokens.contains(&token))
    }
}

/// The workload of every client.
#[derive(Debug)]
pub(crate) struct Workload {
    drivers: Vec<Driver>,
    rng: ChaCha8Rng,
    locks: Vec<String>,
    checked_store: ProcId,
    unchecked_store: ProcId,
    think_max_nanos: u64,
    write_every_nanos: u64,
    ttl_nanos: u64,
    check_pause_pct: u32,
    stale_pct: u32,
    /// Quiet spells: (true time, client index, length).
    quiet: Vec<(u64, usize, u64)>,
    /// Whether the lab's client faults are on (off in the liveness phase).
    pub faults_on: bool,
    next_store_write: u64,
    /// Guarded writes paused between check and send.
    pub check_write_pauses: u64,
    /// Writes presenting a remembered token.
    pub stale_token_writes: u64,
}

impl Workload {
    /// The workload of `seed`'s clients (`clients`) and stores.
    pub fn new(seed: &LabSeed, clients: &[ProcId], stores: (ProcId, ProcId)) -> Workload {
        let mut rng = seed.workload_rng();
        let ttl = nanos(seed.ttl);
        let safety = seed.safety_nanos();
        let mut quiet: Vec<(u64, usize, u64)> = (0..seed.swarm.quiet_clients)
            .map(|_| {
                let at = rng.random_range(0..safety.max(1));
                (at, rng.random_range(0..clients.len()), rng.random_range(ttl..=3 * ttl))
            })
            .collect();
        quiet.sort_unstable();
        let drivers = clients
            .iter()
            .map(|&proc| Driver {
                proc,
                next_op_at: 0,
                next_write_at: 0,
                remembered: BTreeMap::new(),
                relinquished: BTreeMap::new(),
                closed: BTreeSet::new(),
                quiet_until: None,
                counter: 0,
                written: Vec::new(),
            })
            .collect();
        Workload {
            drivers,
            rng,
            locks: seed.lock_names(),
            checked_store: stores.0,
            unchecked_store: stores.1,
            think_max_nanos: nanos(seed.think_max).max(1),
            write_every_nanos: nanos(seed.write_every).max(1),
            ttl_nanos: ttl,
            check_pause_pct: seed.swarm.check_write_pause_pct,
            stale_pct: seed.swarm.stale_token_pct,
            quiet,
            faults_on: true,
            next_store_write: STORE_WRITE_ID_BASE,
            check_write_pauses: 0,
            stale_token_writes: 0,
        }
    }

    /// Drives every client at the current true time.
    pub fn tick(
        &mut self,
        sim: &mut Simulation<Service>,
        rec: &mut Recorder,
        checks: &mut LabCheckers,
    ) {
        let t = sim.now_nanos();
        while self.faults_on && self.quiet.first().is_some_and(|q| q.0 <= t) {
            let (_, i, len) = self.quiet.remove(0);
            let p = self.drivers[i].proc;
            if act(sim, p, Action::SetKeepalives(false)).is_ok() {
                self.drivers[i].quiet_until = Some(t + len);
            }
        }
        for i in 0..self.drivers.len() {
            let p = self.drivers[i].proc;
            if !sim.is_up(p) || sim.is_paused(p) {
                continue;
            }
            if self.drivers[i].quiet_until.is_some_and(|q| q <= t || !self.faults_on)
                && act(sim, p, Action::SetKeepalives(true)).is_ok()
            {
                self.drivers[i].quiet_until = None;
            }
            self.sample_beliefs(sim, i, checks);
            if t >= self.drivers[i].next_write_at {
                self.drivers[i].next_write_at = t + self.write_every_nanos;
                self.store_writes(sim, i);
            }
            let idle = sim
                .process(p)
                .and_then(Service::as_client)
                .is_some_and(|c| c.core().in_flight().is_none() && c.core().queued() == 0);
            if idle && t >= self.drivers[i].next_op_at {
                let think = self.rng.random_range(0..self.think_max_nanos);
                self.drivers[i].next_op_at = t + think;
                self.next_op(sim, i, rec);
            }
        }
    }

    /// What client `i` believes now, for the lease-sanity checker; remembers its tokens.
    fn sample_beliefs(&mut self, sim: &Simulation<Service>, i: usize, checks: &mut LabCheckers) {
        let d = &mut self.drivers[i];
        let t = sim.now_nanos();
        let (Some(c), Some(now)) =
            (sim.process(d.proc).and_then(Service::as_client), sim.local_now(d.proc))
        else {
            return;
        };
        let core = c.core();
        let Some(session) = core.session() else { return };
        // `fence` fails for every lock while the lease is not safe: nothing more to sample.
        if !core.is_safe_now(now) {
            return;
        }
        let closed = d.closed.contains(&session.0);
        checks.belief(t, d.proc, session.0, None, closed);
        for guard in core.held_locks() {
            if let Ok(f) = core.fence(guard.lock(), now) {
                let excused = closed || d.relinquished(&f.lock, f.token);
                checks.belief(t, d.proc, session.0, Some((&f.lock, f.token)), excused);
                // Sampled every tick: update in place, a new key only for a new lock.
                match d.remembered.get_mut(&f.lock) {
                    Some(token) => *token = f.token,
                    None => {
                        d.remembered.insert(f.lock, f.token);
                    }
                }
            }
        }
    }

    /// Maybe arms the check-write pause for client `p`'s next handler call.
    fn maybe_pause_before_write(&mut self, sim: &mut Simulation<Service>, p: ProcId) {
        if !self.faults_on || self.check_pause_pct == 0 {
            return;
        }
        if self.rng.random_range(0..100) < self.check_pause_pct {
            let len = self.rng.random_range(self.ttl_nanos / 2..=3 * self.ttl_nanos);
            if sim.pause_mid_handler(p, len).is_ok() {
                self.check_write_pauses += 1;
            }
        }
    }

    /// A stale token to present instead of the held one, if the dice say so and one exists.
    fn stale_token(&mut self, i: usize, held: Option<&Fence>) -> Option<Fence> {
        if !self.faults_on || self.stale_pct == 0 || self.rng.random_range(0..100) >= self.stale_pct
        {
            return None;
        }
        let d = &self.drivers[i];
        let (lock, token) = d
            .remembered
            .iter()
            .find(|(l, tok)| held.is_none_or(|h| h.lock != **l || h.token != **tok))?;
        self.stale_token_writes += 1;
        Some(Fence { lock: lock.clone(), token: *token })
    }

    fn value(&mut self, sim: &Simulation<Service>, i: usize) -> Bytes {
        let d = &mut self.drivers[i];
        d.counter += 1;
        let inc = sim.incarnation(d.proc).unwrap_or(0);
        let v = format!("{}.{inc}.{}", d.proc.0, d.counter).into_bytes();
        if d.written.len() == 8 {
            d.written.remove(0);
        }
        d.written.push(v.clone());
        v
    }

    /// Client `i` writes to both stores under a lock it holds (or with a remembered token).
    fn store_writes(&mut self, sim: &mut Simulation<Service>, i: usize) {
        let p = self.drivers[i].proc;
        let Some(c) = sim.process(p).and_then(Service::as_client) else { return };
        let held: Option<String> = c.core().held_locks().map(|g| g.lock().to_owned()).next();
        let held_fence = held.as_ref().and_then(|l| {
            let now = sim.local_now(p)?;
            sim.process(p)?.as_client()?.core().fence(l, now).ok()
        });
        let stale = self.stale_token(i, held_fence.as_ref());
        if held.is_none() && stale.is_none() {
            return;
        }
        let value = self.value(sim, i);
        let stores = [self.checked_store, self.unchecked_store];
        let first = self.next_store_write;
        self.next_store_write += 2;
        self.maybe_pause_before_write(sim, p);
        let _ = sim.invoke(p, |svc, ctx| {
            let Service::Client(c) = svc else { return };
            let fence = match (stale, held) {
                (Some(f), _) => Ok(f),
                (None, Some(lock)) => c.core().fence(&lock, ctx.now()).map_err(|e| (lock, e)),
                (None, None) => return,
            };
            match fence {
                Ok(f) => {
                    let key = store_key(&f.lock);
                    for (n, store) in stores.into_iter().enumerate() {
                        let id = first + n as u64;
                        let token = Some(f.token);
                        let sent = ClientObs::StoreWriteSent { store, id, key: key.clone(), token };
                        ctx.observe(Obs::Client(sent));
                        let msg =
                            Msg::StoreWrite { id, key: key.clone(), value: value.clone(), token };
                        ctx.send(store, msg);
                    }
                }
                Err((lock, why)) => {
                    let key = store_key(&lock);
                    let reason = format!("{why:?}");
                    ctx.observe(Obs::Client(ClientObs::WriteSkipped { key, reason }));
                }
            }
        });
    }

    /// Hands client `i` its next operation.
    fn next_op(&mut self, sim: &mut Simulation<Service>, i: usize, rec: &mut Recorder) {
        let p = self.drivers[i].proc;
        let inc = sim.incarnation(p).unwrap_or(0);
        let Some(c) = sim.process(p).and_then(Service::as_client) else { return };
        let core = c.core();
        let Some(session) = core.session().map(|s| s.0) else {
            self.submit(sim, i, rec, UserOp::OpenSession, OpSpec::Other, "open");
            return;
        };
        let now = sim.local_now(p).expect("a known client");
        // Any of the locks it holds (not always the first: it would never release the others).
        let usable: Vec<Fence> =
            core.held_locks().filter_map(|g| core.fence(g.lock(), now).ok()).collect();
        let held =
            (!usable.is_empty()).then(|| usable[self.rng.random_range(0..usable.len())].clone());
        let guards: Vec<(String, u64)> =
            core.held_locks().map(|g| (g.lock().to_owned(), g.token())).collect();
        if let Some(lock) = rec.queued_locks(p, inc).into_iter().next() {
            if self.rng.random_bool(0.7) {
                let op = UserOp::WaitGrant { lock, wait: Some(WAIT) };
                self.submit(sim, i, rec, op, OpSpec::Other, "wait");
            } else {
                rec.drop_queued(p, inc, &lock);
                self.release(sim, i, rec, lock, session, &guards);
            }
            return;
        }
        let lock = self.locks[self.rng.random_range(0..self.locks.len())].clone();
        let free = FREE_KEYS[self.rng.random_range(0..FREE_KEYS.len())].to_owned();
        let roll = self.rng.random_range(0..100);
        match (roll, held) {
            (0..25, Some(f)) => self.fenced_put(sim, i, rec, session, f),
            (25..40, Some(f)) => self.release(sim, i, rec, f.lock, session, &guards),
            (0..55, _) => {
                let spec = OpSpec::Lock { lock: lock.clone(), session, op: LockOp::Acquire };
                self.submit(sim, i, rec, UserOp::TryAcquire { lock }, spec, "try-acquire");
            }
            (55..65, _) => {
                let spec = OpSpec::Lock { lock: lock.clone(), session, op: LockOp::Acquire };
                let op = UserOp::Acquire { lock, wait: Some(WAIT) };
                self.submit(sim, i, rec, op, spec, "acquire");
            }
            (65..75, _) => {
                let value = self.value(sim, i);
                let spec = OpSpec::Kv { key: free.clone(), op: KvOp::Write(value.clone()) };
                self.submit(
                    sim,
                    i,
                    rec,
                    UserOp::Put { key: free, value, fence: None },
                    spec,
                    "put",
                );
            }
            (75..83, _) => {
                let key = if self.rng.random_bool(0.5) { free } else { fenced_key(&lock) };
                let spec = OpSpec::Kv { key: key.clone(), op: KvOp::Read };
                let op = UserOp::Get { key, consistency: Consistency::Linearizable };
                self.submit(sim, i, rec, op, spec, "get");
            }
            (83..90, _) => self.cas(sim, i, rec, free),
            (90..93, _) => {
                let spec = OpSpec::Kv { key: free.clone(), op: KvOp::Delete };
                self.submit(sim, i, rec, UserOp::Delete { key: free, fence: None }, spec, "delete");
            }
            (93..96, _) => {
                if let Some(f) = self.stale_token(i, None) {
                    self.fenced_put(sim, i, rec, session, f);
                }
            }
            (96..97, _) => {
                let d = &mut self.drivers[i];
                d.closed.insert(session);
                for (lock, token) in guards {
                    d.relinquished.entry(lock).or_default().insert(token);
                }
                let spec = OpSpec::Close { session };
                self.submit(sim, i, rec, UserOp::CloseSession, spec, "close");
            }
            _ => {
                let key = fenced_key(&lock);
                let spec = OpSpec::Kv { key: key.clone(), op: KvOp::Read };
                let op = UserOp::Get { key, consistency: Consistency::Linearizable };
                self.submit(sim, i, rec, op, spec, "get");
            }
        }
    }

    fn cas(&mut self, sim: &mut Simulation<Service>, i: usize, rec: &mut Recorder, key: String) {
        let written = &self.drivers[i].written;
        let expected = if written.is_empty() || self.rng.random_bool(0.3) {
            None
        } else {
            Some(written[self.rng.random_range(0..written.len())].clone())
        };
        let new = self.value(sim, i);
        let spec = OpSpec::Kv {
            key: key.clone(),
            op: KvOp::Cas { expected: expected.clone(), new: new.clone() },
        };
        let expected = expected.map_or(Expect::Absent, Expect::Value);
        let op = UserOp::Cas { key, expected, value: new, fence: None };
        self.submit(sim, i, rec, op, spec, "cas");
    }

    fn release(
        &mut self,
        sim: &mut Simulation<Service>,
        i: usize,
        rec: &mut Recorder,
        lock: String,
        session: u64,
        guards: &[(String, u64)],
    ) {
        let d = &mut self.drivers[i];
        for (_, token) in guards.iter().filter(|g| g.0 == lock) {
            d.relinquished.entry(lock.clone()).or_default().insert(*token);
        }
        let spec = OpSpec::Lock { lock: lock.clone(), session, op: LockOp::Release };
        self.submit(sim, i, rec, UserOp::Release { lock }, spec, "release");
    }

    /// A put to palisade's kv fenced with `fence` (checked against the lease inside the same
    /// handler call, unless the fence is a remembered one).
    fn fenced_put(
        &mut self,
        sim: &mut Simulation<Service>,
        i: usize,
        rec: &mut Recorder,
        session: u64,
        fence: Fence,
    ) {
        let p = self.drivers[i].proc;
        let inc = sim.incarnation(p).unwrap_or(0);
        let key = fenced_key(&fence.lock);
        let value = self.value(sim, i);
        self.maybe_pause_before_write(sim, p);
        let t = sim.now_nanos();
        let (k, v) = (key.clone(), value.clone());
        let remembered = self.drivers[i].relinquished(&fence.lock, fence.token)
            || sim
                .local_now(p)
                .and_then(|now| sim.process(p)?.as_client()?.core().fence(&fence.lock, now).ok())
                .is_none_or(|f| f != fence);
        let f = fence.clone();
        let started = sim.invoke(p, move |svc, ctx| {
            let Service::Client(c) = svc else { return None };
            if !remembered && c.core().fence(&f.lock, ctx.now()).is_err() {
                let reason = "lease no longer safe".to_owned();
                ctx.observe(Obs::Client(ClientObs::WriteSkipped { key: k, reason }));
                return None;
            }
            let id = c.submit(ctx, UserOp::Put { key: k, value: v, fence: Some(f) });
            Some((id, c.core().in_flight_request()))
        });
        if let Ok(Some((op, request))) = started {
            let spec = OpSpec::Fenced { lock: fence.lock, session, token: fence.token, key, value };
            rec.invoked((p, inc, op), t, spec, "fenced-put", request);
        }
    }

    fn submit(
        &mut self,
        sim: &mut Simulation<Service>,
        i: usize,
        rec: &mut Recorder,
        op: UserOp,
        spec: OpSpec,
        name: &'static str,
    ) {
        let p = self.drivers[i].proc;
        let inc = sim.incarnation(p).unwrap_or(0);
        let t = sim.now_nanos();
        let wants = match &op {
            UserOp::Acquire { lock, .. }
            | UserOp::TryAcquire { lock }
            | UserOp::WaitGrant { lock, .. } => Some(lock.clone()),
            _ => None,
        };
        let started = sim.invoke(p, |svc, ctx| {
            let Service::Client(c) = svc else { return None };
            let id = c.submit(ctx, op);
            Some((id, c.core().in_flight_request()))
        });
        if let Ok(Some((id, request))) = started {
            rec.invoked((p, inc, id), t, spec, name, request);
            if let Some(lock) = wants {
                rec.wants((p, inc, id), &lock);
            }
        }
    }
}
