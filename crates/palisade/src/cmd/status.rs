//! `palisade status`: every member's own view of the cluster, in a few lines.
//!
//! Each member is asked directly (a node that does not answer is listed with the reason), so
//! the output shows disagreement when there is some: two nodes that each believe another
//! leads, a node a term behind, a follower whose applied index lags. The locks and sessions
//! are the leader's view (or, without a leader, the most advanced node's).
//!
//! Exit codes: 0 a leader is known; 1 members answered but none leads; 2 none answered.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use palisade_client::NodeReport;

use super::CmdResult;
use super::client_args::{EXIT_REFUSED, EndpointArgs, ask};

/// Arguments of `palisade status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the cluster is.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// Runs `palisade status`.
pub fn run(args: Args) -> CmdResult {
    let reports = ask(&args.endpoints, async |client| client.cluster_status().await)?;
    let text = render(&reports);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    let answered = reports.iter().filter(|r| r.status.is_ok()).count();
    let leads = reports.iter().any(|r| r.status.as_ref().is_ok_and(|s| is_leader(s)));
    Ok(match (answered, leads) {
        (0, _) => ExitCode::from(2),
        (_, false) => ExitCode::from(EXIT_REFUSED),
        _ => ExitCode::SUCCESS,
    })
}

fn is_leader(status: &palisade_node::NodeStatus) -> bool {
    status.raft.leader == Some(status.raft.id) && status.raft.role == palisade_raft::Role::Leader
}

/// Renders the reports as text (printed in one write: a closed pipe, as in `palisade status |
/// head`, ends the output quietly instead of panicking).
fn render(reports: &[NodeReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:<28} {:<13} {:>6} {:>7} {:>9} {:>9} {:>9} {:>6}",
        "node", "endpoint", "role", "term", "leader", "commit", "applied", "sessions", "locks"
    );
    for report in reports {
        let line = match &report.status {
            Ok(s) => format!(
                "{:<5} {:<28} {:<13} {:>6} {:>7} {:>9} {:>9} {:>9} {:>6}",
                report.node,
                report.endpoint,
                format!("{:?}", s.raft.role).to_lowercase(),
                s.raft.term,
                s.raft.leader.map_or("-".to_string(), |l| l.to_string()),
                s.raft.commit,
                s.applied_index,
                s.session_count,
                s.lock_count
            ),
            Err(e) => format!("{:<5} {:<28} unreachable: {e}", report.node, report.endpoint),
        };
        let _ = writeln!(out, "{line}");
    }
    let best = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok().map(|s| (r, s)))
        .max_by_key(|(_, s)| (is_leader(s), s.applied_index));
    let Some((report, status)) = best else {
        let _ = writeln!(out, "\nno member answered");
        return out;
    };
    let _ = writeln!(
        out,
        "\nlocks (as node {} sees them; last token {}):",
        report.node, status.last_token
    );
    if status.locks.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for lock in &status.locks {
        let holder = lock.holder.as_ref().map_or("free".to_string(), |h| {
            format!("held by session {} (token {})", h.session, h.token)
        });
        let delay = lock.delayed_since.map_or(String::new(), |i| format!(", lock-delay since {i}"));
        let _ =
            writeln!(out, "  {:<24} {holder}, {} waiting{delay}", lock.name, lock.waiters.len());
    }
    let _ = writeln!(out, "sessions: {}", status.session_count);
    for session in &status.sessions {
        let left = session.expires_in.map_or("-".to_string(), |d| format!("{d:.1?}"));
        let _ = writeln!(
            out,
            "  session {:<8} client {:#018x}  ttl {:?}  left {left}  holds {}",
            session.session.to_string(),
            session.client,
            session.ttl,
            session.held.join(",")
        );
    }
    let _ = writeln!(out, "\nstatus page: {}/", report.endpoint);
    out
}
