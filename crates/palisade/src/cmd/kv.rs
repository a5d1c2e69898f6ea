//! `palisade kv get|put|cas|delete`: the fenced key-value store from the shell.
//!
//! Writes take `--fence LOCK:TOKEN` (inside `palisade lock`, that is
//! `"$PALISADE_LOCK:$PALISADE_FENCE_TOKEN"`): the store applies the write only if TOKEN is the
//! lock's current grant, so a holder that lost its lock cannot overwrite its successor's work.
//!
//! Exit codes: 0 done; 1 refused (stale fence, compare-and-swap mismatch, key not found);
//! 2 bad arguments or no cluster; 3 the write's outcome is unknown (it may or may not have
//! been applied: read the key before acting).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use palisade_client::{Error, Expect, Fence, Outcome};

use super::CmdResult;
use super::client_args::{EXIT_REFUSED, EXIT_UNKNOWN, EndpointArgs, parse_duration, parse_fence};

/// Arguments of `palisade kv`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operation.
    #[command(subcommand)]
    pub op: KvOp,
    /// Where the cluster is.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// How long an operation may take across its retries.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
}

/// A kv operation.
#[derive(Debug, clap::Subcommand)]
pub enum KvOp {
    /// Print a key's value (linearizable read).
    Get {
        /// The key.
        key: String,
        /// Also print the version, the fence of the write and its log index.
        #[arg(long)]
        verbose: bool,
    },
    /// Write a key.
    Put {
        /// The key.
        key: String,
        /// The value (text).
        value: String,
        /// Apply only if TOKEN is LOCK's current grant.
        #[arg(long, value_name = "LOCK:TOKEN", value_parser = parse_fence)]
        fence: Option<Fence>,
    },
    /// Compare-and-swap: write only if the key is as expected.
    Cas {
        /// The key.
        key: String,
        /// The new value (text).
        value: String,
        /// Expect the key to be absent.
        #[arg(long, conflicts_with_all = ["expect_value", "expect_version"])]
        expect_absent: bool,
        /// Expect this value.
        #[arg(long, conflicts_with = "expect_version")]
        expect_value: Option<String>,
        /// Expect this version (as printed by `kv get --verbose`, e.g. 1700000000000000000+3).
        #[arg(long)]
        expect_version: Option<String>,
        /// Apply only if TOKEN is LOCK's current grant.
        #[arg(long, value_name = "LOCK:TOKEN", value_parser = parse_fence)]
        fence: Option<Fence>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
        /// Apply only if TOKEN is LOCK's current grant.
        #[arg(long, value_name = "LOCK:TOKEN", value_parser = parse_fence)]
        fence: Option<Fence>,
    },
}

/// Runs `palisade kv`.
pub fn run(args: Args) -> CmdResult {
    super::client_args::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> CmdResult {
    let mut options = args.endpoints.options(palisade_client::TTL_DEFAULT);
    options.op_timeout = args.timeout;
    options.attempt_timeout = options.attempt_timeout.min(args.timeout);
    let client = palisade_client::Client::connect(options).await?;
    let result = match args.op {
        KvOp::Get { key, verbose } => get(&client, &key, verbose).await,
        KvOp::Put { key, value, fence } => {
            report_write(client.put(&key, value, fence).await.map(|o| o.map(|v| v.to_string())))
        }
        KvOp::Cas { key, value, expect_absent, expect_value, expect_version, fence } => {
            let expected = match (expect_absent, expect_value, expect_version) {
                (true, _, _) => Expect::Absent,
                (_, Some(v), _) => Expect::Value(v.into_bytes()),
                (_, _, Some(v)) => {
                    Expect::Version(v.parse().map_err(|e| format!("--expect-version {v:?}: {e}"))?)
                }
                _ => {
                    return Err(
                        "cas needs --expect-absent, --expect-value or --expect-version".into()
                    );
                }
            };
            let written = client.cas(&key, expected, value, fence).await;
            report_write(written.map(|o| o.map(|v| v.to_string())))
        }
        KvOp::Delete { key, fence } => {
            let deleted = client.delete(&key, fence).await.map(|o| {
                o.map(|existed| if existed { "deleted" } else { "no such key" }.to_string())
            });
            report_write(deleted)
        }
    };
    if client.session().is_some() {
        // The write's session: closing it now spares the cluster a session timing out.
        let _ = client.close_session().await;
    }
    client.shutdown();
    result
}

async fn get(client: &palisade_client::Client, key: &str, verbose: bool) -> CmdResult {
    match client.get(key).await? {
        Some(value) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value.data)?;
            out.write_all(b"\n")?;
            if verbose {
                let fence = value.written_by.map(|f| format!("{}:{}", f.lock, f.token));
                writeln!(
                    out,
                    "version {}  fence {}  index {}",
                    value.version,
                    fence.as_deref().unwrap_or("-"),
                    value.index
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("palisade: key {key:?} not found");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}

/// Prints a write's result: `ok <detail>`, a refusal (exit 1), or an unknown outcome (exit 3).
fn report_write(result: Result<Outcome<String>, Error>) -> CmdResult {
    match result {
        Ok(Outcome::Done(detail)) => {
            println!("ok {detail}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Unknown) => {
            eprintln!(
                "palisade: outcome unknown: the write may or may not have been applied (no \
                 answer could be learned); read the key before acting"
            );
            Ok(ExitCode::from(EXIT_UNKNOWN))
        }
        Err(e @ (Error::StaleFence(_) | Error::CasMismatch { .. })) => {
            eprintln!("palisade: {e}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        Err(e) => Err(e.into()),
    }
}
