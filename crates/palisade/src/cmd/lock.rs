//! `palisade lock NAME -- COMMAND ARGS...`: run a command while holding a lock.
//!
//! Like `etcdctl lock`, with the fencing token handed to the command: it runs with
//! `PALISADE_LOCK=NAME` and `PALISADE_FENCE_TOKEN=<token>` in its environment, and should
//! attach the token to every write the lock guards (`palisade kv put --fence
//! "$PALISADE_LOCK:$PALISADE_FENCE_TOKEN" ...`), because nothing on the client side can stop a
//! paused process from writing after its lock is gone — only the storage's fence check can.
//!
//! The command runs in its own process group. If the lock is lost while it runs (the local
//! lease ran out: keepalives failed for a TTL, or the server said the session expired), the
//! whole group gets SIGTERM, then SIGKILL after `--grace`, and palisade exits with
//! [`EXIT_LOCK_LOST`] and a message saying so. SIGINT and SIGTERM sent to palisade are passed
//! on to the group. When palisade runs in the foreground of a terminal, it hands the
//! terminal's foreground to the command's group as a shell does for a job — so an interactive
//! command can read the terminal (a background group would be stopped by SIGTTIN) and Ctrl-C
//! reaches the command directly — and takes it back when the command ends. Otherwise palisade
//! exits with the command's exit code (128 + signal if a signal ended it) after releasing the
//! lock.
//!
//! Exit codes: the command's; 1 the lock is held by somebody else (after `--wait`); 2 bad
//! arguments, no cluster, the command cannot start; 3 the acquire's outcome is unknown;
//! [`EXIT_LOCK_LOST`] the lock was lost while the command ran.

use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use palisade_client::{LeaseState, LockGuard, Outcome};
use tokio::signal::unix::{SignalKind, signal};

use super::CmdResult;
use super::client_args::{EXIT_REFUSED, EXIT_UNKNOWN, EndpointArgs, connect, parse_duration};

/// Exit code when the lock was lost while the command ran.
pub const EXIT_LOCK_LOST: u8 = 4;
/// Longest `--grace`.
pub const GRACE_MAX: Duration = Duration::from_secs(300);

/// Arguments of `palisade lock`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lock's name.
    pub name: String,
    /// Session TTL: how long the lock survives this process stopping its keepalives.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ttl: Duration,
    /// How long to wait for the lock if somebody else holds it (0s: fail at once).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
    /// After SIGTERM to a command whose lock was lost, how long before SIGKILL.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Where the cluster is.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `palisade lock`.
pub fn run(args: Args) -> CmdResult {
    if args.grace > GRACE_MAX {
        return Err(format!("--grace {:?} is above the maximum {GRACE_MAX:?}", args.grace).into());
    }
    super::client_args::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> CmdResult {
    let client = connect(&args.endpoints, args.ttl).await?;
    let guard = match client.lock(&args.name, args.wait).await {
        Ok(Outcome::Done(guard)) => guard,
        Ok(Outcome::Unknown) => {
            eprintln!(
                "palisade: could not learn whether lock {:?} was acquired; not running the \
                 command (if it was, it is released when the session expires)",
                args.name
            );
            client.shutdown();
            return Ok(ExitCode::from(EXIT_UNKNOWN));
        }
        Err(e @ palisade_client::Error::LockHeld { .. }) => {
            eprintln!("palisade: {e}");
            close(&client).await;
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(e) => {
            client.shutdown();
            return Err(e.into());
        }
    };
    let outcome = run_command(&args, &guard).await;
    let lost = matches!(outcome, Ok(Ran::Lost));
    if !lost {
        match guard.release().await {
            Ok(Outcome::Done(())) => {}
            Ok(Outcome::Unknown) => eprintln!(
                "palisade: the release of lock {:?} has an unknown outcome; it is released \
                 when the session closes or expires",
                args.name
            ),
            Err(e) => eprintln!("palisade: releasing lock {:?}: {e}", args.name),
        }
    }
    if lost {
        // The session is gone (or going): nothing to close, and no cluster may answer.
        client.shutdown();
    } else {
        close(&client).await;
    }
    match outcome? {
        Ran::Exited(status) => Ok(exit_code_of(status)),
        Ran::Lost => Ok(ExitCode::from(EXIT_LOCK_LOST)),
    }
}

/// Closes the session (releasing whatever it still holds) and stops the client.
async fn close(client: &palisade_client::Client) {
    if client.session().is_some() {
        let _ = client.close_session().await;
    }
    client.shutdown();
}

/// How the command ended.
enum Ran {
    /// It exited (or a signal ended it) while the lock was held.
    Exited(ExitStatus),
    /// The lock was lost; the command's group was killed.
    Lost,
}

/// Starts the command in its own process group with the lock in its environment, and waits
/// for it or for the loss of the lock.
async fn run_command(args: &Args, guard: &LockGuard) -> Result<Ran, Box<dyn std::error::Error>> {
    if !guard.is_safe_now() {
        return Err(format!("lock {:?} was lost before the command could start", args.name).into());
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env("PALISADE_LOCK", &args.name)
        .env("PALISADE_FENCE_TOKEN", guard.token().to_string())
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let _terminal = pgid.and_then(Foreground::hand_to);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut watch = guard.watch();
    let mut warned = false;
    loop {
        tokio::select! {
            status = child.wait() => return Ok(Ran::Exited(status?)),
            _ = guard.lost() => break,
            _ = interrupt.recv() => forward(pgid, Signal::SIGINT),
            _ = terminate.recv() => forward(pgid, Signal::SIGTERM),
            changed = watch.changed(), if !warned => {
                if changed.is_ok() && *watch.borrow() == LeaseState::Jeopardy {
                    eprintln!(
                        "palisade: lock {:?} is in jeopardy: keepalives are failing",
                        args.name
                    );
                    warned = true;
                }
            }
        }
    }
    eprintln!(
        "palisade: lost lock {:?} (token {}): the session's lease ran out or the session \
         expired; stopping the command's process group",
        args.name,
        guard.token()
    );
    forward(pgid, Signal::SIGTERM);
    if tokio::time::timeout(args.grace, child.wait()).await.is_err() {
        eprintln!("palisade: the command did not stop within {:?}: SIGKILL", args.grace);
        forward(pgid, Signal::SIGKILL);
        child.wait().await?;
    }
    // The group may outlive its leader: make sure nothing of it runs on without the lock.
    forward(pgid, Signal::SIGKILL);
    Ok(Ran::Lost)
}

/// The terminal's foreground, lent to the command's process group while it runs.
struct Foreground {
    /// palisade's own process group, which had the foreground.
    ours: Pid,
}

impl Foreground {
    /// If standard input is a terminal whose foreground group is palisade's, makes `group`
    /// the foreground (and continues it, in case it read the terminal before and was stopped
    /// by SIGTTIN). `None` otherwise, or if the terminal refused.
    fn hand_to(group: Pid) -> Option<Foreground> {
        let stdin = std::io::stdin();
        if !std::io::IsTerminal::is_terminal(&stdin) {
            return None;
        }
        let ours = nix::unistd::getpgrp();
        if nix::unistd::tcgetpgrp(&stdin).ok()? != ours {
            return None;
        }
        set_foreground(group).ok()?;
        forward(Some(group), Signal::SIGCONT);
        Some(Foreground { ours })
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // Fails only if the terminal is gone; then there is nothing to take back.
        let _ = set_foreground(self.ours);
    }
}

/// Makes `group` the foreground process group of the terminal on standard input. A process
/// outside the foreground group gets SIGTTOU for this unless it blocks that signal, so this
/// thread blocks it for the call.
fn set_foreground(group: Pid) -> nix::Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let mut before = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut before))?;
    let result = nix::unistd::tcsetpgrp(std::io::stdin(), group);
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None)?;
    result
}

/// Sends `signal` to the command's process group (by its id, the child's pid).
fn forward(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // Fails only when the group is gone already.
        let _ = killpg(pgid, signal);
    }
}

/// The command's exit code, or 128 + the signal that ended it (as shells report it).
fn exit_code_of(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::from(1),
    }
}
