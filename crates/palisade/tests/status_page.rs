//! The status page in a real browser: a cluster of `palisade server` processes, a lock held
//! through the HTTP API, and the leader's `/` loaded in headless Chromium.
//!
//! `--dump-dom` prints the DOM after the page's scripts ran (`--virtual-time-budget` lets its
//! timers fire), so what is checked is what the page's JavaScript fetched from `/v1/status`
//! and rendered: the static HTML has "–" in every value and no lock rows.
//!
//! Chromium is Debian's `chromium` package (CI installs it, see `.ci/run`). Without it the
//! test fails when `PALISADE_REQUIRE_BROWSER=1` and otherwise says it skipped. With
//! `PALISADE_STATUS_SCREENSHOT=FILE.png` it also saves a 1280x900 screenshot of the page.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Client, Cluster, Proc};
use serde_json::json;

/// Virtual time the page gets to run its scripts (it polls every second).
const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;
/// Longest a Chromium run may take on a loaded machine.
const BROWSER_RUN_MAX: Duration = Duration::from_secs(90);

/// The Chromium executable: `$PALISADE_CHROMIUM`, or the first of the usual names on `PATH`.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PALISADE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `url` with `extra` arguments (and a fresh profile under `dir`);
/// returns its stdout. The flags keep it off the network: this machine refuses connections to
/// anything but localhost, and background fetches would only slow it down.
fn chromium(browser: &Path, dir: &Path, url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir_in(dir).expect("a profile directory");
    let stdout = dir.join("chromium.out");
    let stderr = dir.join("chromium.err");
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
        .args(extra)
        .arg(url);
    let out = std::fs::File::create(&stdout).expect("create chromium.out");
    let mut proc = Proc::spawn_to(command, out.into(), &stderr);
    let exit = proc.wait_exit(BROWSER_RUN_MAX);
    let err = proc.stderr_tail(20);
    let exit = exit.unwrap_or_else(|| panic!("chromium ran over {BROWSER_RUN_MAX:?}:\n{err}"));
    assert!(exit.success(), "chromium failed ({exit}):\n{err}");
    std::fs::read_to_string(&stdout).expect("read chromium's output")
}

/// The text inside the element with `id="ID"` (up to its first child or closing tag).
fn text_of_id<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let marker = format!("id=\"{id}\"");
    let at = dom.find(&marker)?;
    let open_end = at + dom[at..].find('>')? + 1;
    let close = open_end + dom[open_end..].find('<')?;
    Some(dom[open_end..close].trim())
}

/// The HTML of the lock row `<tr data-lock="NAME">...</tr>`.
fn lock_row<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let at = dom.find(&format!("data-lock=\"{name}\""))?;
    let end = at + dom[at..].find("</tr>")?;
    Some(&dom[at..end])
}

/// The text of the cell of class `class` inside `row`.
fn cell_text<'a>(row: &'a str, class: &str) -> Option<&'a str> {
    let at = row.find(&format!("{class}\">"))? + class.len() + 2;
    let end = at + row[at..].find('<')?;
    Some(row[at..end].trim())
}

/// The leader's page, rendered by Chromium from `/v1/status`, names the leader and shows the
/// held lock's row with its holder session and fencing token.
#[test]
fn the_status_page_shows_the_leader_and_a_held_lock() {
    let Some(browser) = find_chromium() else {
        let required = std::env::var("PALISADE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(!required, "PALISADE_REQUIRE_BROWSER=1 but no chromium on PATH");
        println!("skipped: chromium not found (install Debian's chromium package)");
        return;
    };
    let cluster = Cluster::start(3);
    let mut client = Client::new(0x5a9e);
    let session = cluster.open_session(&mut client, 60_000);
    let acquire = json!({ "session": session, "wait_ms": null });
    let (status, granted) = cluster.post(&mut client, "/v1/locks/status-demo/acquire", &acquire);
    assert_eq!(status, 200, "{granted}");
    let token = granted["token"].as_u64().expect("a token");
    // The page of the leader names it; an election in between (rare, on a loaded machine)
    // makes the test look again at the new leader's page.
    let mut attempts = 0;
    let (leader, dom) = loop {
        attempts += 1;
        let leader = cluster.leader();
        let url = format!("{}/", cluster.url(leader));
        let dom = chromium(&browser, cluster.dir.path(), &url, &["--dump-dom".to_owned()]);
        let leader_id = (leader + 1).to_string();
        let shown = text_of_id(&dom, "leader") == Some(leader_id.as_str())
            && text_of_id(&dom, "role") == Some("leader");
        if shown || attempts == 3 || cluster.leader() == leader {
            break (leader, dom);
        }
    };
    let context = || format!("the page's DOM:\n{dom}\n{}", cluster.logs());
    let leader_id = (leader + 1).to_string();
    assert_eq!(text_of_id(&dom, "leader"), Some(leader_id.as_str()), "{}", context());
    assert_eq!(text_of_id(&dom, "role"), Some("leader"), "{}", context());
    assert!(text_of_id(&dom, "term").is_some_and(|t| t.parse::<u64>().is_ok()), "{}", context());
    let updated = text_of_id(&dom, "updated");
    assert!(updated.is_some_and(|t| t != "never"), "a poll succeeded: {}", context());
    let row = lock_row(&dom, "status-demo").unwrap_or_else(|| panic!("no lock row; {}", context()));
    assert_eq!(cell_text(row, "name"), Some("status-demo"), "{row}");
    assert_eq!(cell_text(row, "token"), Some(token.to_string().as_str()), "{row}");
    assert_eq!(cell_text(row, "holder"), Some(session.to_string().as_str()), "{row}");
    for member in 1..=3 {
        assert!(dom.contains(&format!("data-member=\"{member}\"")), "{}", context());
    }
    assert!(dom.contains(&format!("data-session=\"{session}\"")), "{}", context());

    if let Some(path) = std::env::var_os("PALISADE_STATUS_SCREENSHOT") {
        let extra = [
            format!("--screenshot={}", PathBuf::from(&path).display()),
            "--window-size=1280,900".to_owned(),
        ];
        let url = format!("{}/", cluster.url(leader));
        chromium(&browser, cluster.dir.path(), &url, &extra);
        println!("screenshot: {}", PathBuf::from(path).display());
    }
}
