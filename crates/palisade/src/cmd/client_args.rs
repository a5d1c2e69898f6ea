//! What every client subcommand shares: where the cluster is, how to connect, how to print a
//! failure the user caused in one line.
//!
//! Endpoints come from `--endpoints`, else `PALISADE_ENDPOINTS`, else the addresses of the dev
//! cluster that `palisade dev` starts with its defaults, so that `palisade dev` in one terminal
//! and `palisade lock demo -- ...` in another just work.

use std::time::Duration;

use palisade_client::{Client, ClientOptions, Fence};

/// The HTTP endpoints of `palisade dev` with its default base port (7001; HTTP on +100).
pub const DEV_ENDPOINTS_DEFAULT: &str = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";

/// Exit code of a command whose outcome the client could not learn.
pub const EXIT_UNKNOWN: u8 = 3;
/// Exit code of a refusal the user can act on (lock held, stale fence, key not found, ...).
pub const EXIT_REFUSED: u8 = 1;

/// Where the cluster is.
#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArgs {
    /// HTTP endpoints of some members, comma-separated (HOST:PORT or http://HOST:PORT).
    #[arg(
        long,
        env = "PALISADE_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEV_ENDPOINTS_DEFAULT,
        global = true
    )]
    pub endpoints: Vec<String>,
}

impl EndpointArgs {
    /// The client options for these endpoints and session TTL `ttl`.
    pub fn options(&self, ttl: Duration) -> ClientOptions {
        ClientOptions::new(self.endpoints.iter().filter(|e| !e.trim().is_empty())).with_ttl(ttl)
    }
}

/// A current-thread tokio runtime for one client command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Connects to the cluster.
pub async fn connect(args: &EndpointArgs, ttl: Duration) -> Result<Client, palisade_client::Error> {
    Client::connect(args.options(ttl)).await
}

/// Runs one request against the cluster, for the commands that need no session of their own
/// (`status`, `time`, `drain`): connects, awaits `request`, shuts the client down.
pub fn ask<T>(
    args: &EndpointArgs,
    request: impl AsyncFnOnce(&Client) -> T,
) -> Result<T, Box<dyn std::error::Error>> {
    runtime()?.block_on(async {
        let client = connect(args, palisade_client::TTL_DEFAULT).await?;
        let answer = request(&client).await;
        client.shutdown();
        Ok(answer)
    })
}

/// Parses a duration flag ("10s", "500ms", "1m").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration ({e})"))
}

/// Parses `--fence LOCK:TOKEN` (the token is after the last colon).
pub fn parse_fence(text: &str) -> Result<Fence, String> {
    let bad = || format!("{text:?} is not of the form LOCK:TOKEN (e.g. demo:33)");
    let (lock, token) = text.rsplit_once(':').ok_or_else(bad)?;
    if lock.is_empty() {
        return Err(bad());
    }
    let token = token.parse::<u64>().map_err(|_| bad())?;
    Ok(Fence { lock: lock.to_string(), token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_parse_and_bad_ones_are_named() {
        assert_eq!(parse_fence("demo:33").unwrap(), Fence { lock: "demo".into(), token: 33 });
        assert_eq!(parse_fence("a:b:7").unwrap(), Fence { lock: "a:b".into(), token: 7 });
        for bad in ["demo", ":3", "demo:", "demo:x", "demo:-1"] {
            let e = parse_fence(bad).unwrap_err();
            assert!(e.contains("LOCK:TOKEN"), "{e}");
        }
    }

    #[test]
    fn default_endpoints_are_the_dev_clusters() {
        let dir = std::env::temp_dir();
        let configs = palisade_server::ServerConfig::dev_cluster(&dir, 3, 7001).unwrap();
        let https: Vec<String> = configs.iter().map(|c| c.http_listen.to_string()).collect();
        assert_eq!(https.join(","), DEV_ENDPOINTS_DEFAULT);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("ten").is_err());
    }
}
