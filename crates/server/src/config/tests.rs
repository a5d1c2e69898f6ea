//! Every validation error names its field; the example file loads; the derived core
//! configurations and the fingerprint behave as documented.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use palisade_raft::ElectionConfig;

use super::*;

const PEERS: &str = r#"
[[peers]]
id = 1
peer_addr = "127.0.0.1:7001"
http_addr = "127.0.0.1:8001"
[[peers]]
id = 2
peer_addr = "127.0.0.1:7002"
http_addr = "127.0.0.1:8002"
[[peers]]
id = 3
peer_addr = "127.0.0.1:7003"
http_addr = "127.0.0.1:8003"
"#;

/// A file with the base identity, `top` replacing or adding top-level keys (an empty value
/// removes the key), an optional `[election]` body, and `peers`.
fn file(top: &[(&str, &str)], election: Option<&str>, peers: &str) -> String {
    let mut keys: BTreeMap<&str, &str> =
        [("cluster", "\"test\""), ("node_id", "1"), ("data_dir", "\"data\"")].into();
    for &(key, value) in top {
        keys.insert(key, value);
    }
    let mut text: String =
        keys.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k} = {v}\n")).collect();
    if let Some(election) = election {
        text.push_str(&format!("[election]\n{election}\n"));
    }
    text.push_str(peers);
    text
}

fn load_text(text: &str, overrides: &ConfigOverrides) -> Result<ServerConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    fs::write(&path, text).unwrap();
    ServerConfig::load(Some(&path), overrides)
}

fn load(top: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    load_text(&file(top, None, PEERS), &ConfigOverrides::default())
}

fn load_election(election: &str, top: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    load_text(&file(top, Some(election), PEERS), &ConfigOverrides::default())
}

/// Asserts the error's message names every one of `words`.
#[track_caller]
fn assert_names(result: Result<ServerConfig, ConfigError>, words: &[&str]) {
    let message = match result {
        Ok(config) => panic!("expected an error naming {words:?}, got {config:?}"),
        Err(e) => e.to_string(),
    };
    for word in words {
        assert!(message.contains(word), "{message:?} does not name {word:?}");
    }
}

#[test]
fn a_valid_file_loads_with_defaults_and_own_listen_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    fs::write(&path, file(&[("node_id", "2")], None, PEERS)).unwrap();
    let c = ServerConfig::load(Some(&path), &ConfigOverrides::default()).unwrap();
    assert_eq!(c.cluster_id, cluster_id_from_name("test"));
    assert_eq!(c.cluster_name.as_deref(), Some("test"));
    assert_eq!(c.node_id, 2);
    assert_eq!(c.peer_listen.to_string(), "127.0.0.1:7002");
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:8002");
    assert_eq!(c.data_dir, dir.path().join("data"), "relative to the file's directory");
    assert!(c.data_dir.is_dir(), "load creates the data directory");
    assert_eq!(c.heartbeat_interval, defaults::HEARTBEAT);
    assert_eq!(c.ttl_max, defaults::TTL_MAX);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.own_peer().http_addr.port(), 8002);
    let book = c.resolve_peer_addrs().unwrap();
    assert_eq!(book.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(book[&3], "127.0.0.1:7003".parse().unwrap());
}

#[test]
fn the_documented_example_file_is_valid() {
    let example = include_str!("../../../../docs/examples/node1.toml");
    let dir = tempfile::tempdir().unwrap();
    let overrides = ConfigOverrides { data_dir: Some(dir.path().join("n1")), ..Default::default() };
    let c = load_text(example, &overrides).unwrap();
    assert_eq!(c.node_id, 1);
    assert_eq!(c.peers.len(), 3);
    assert_eq!(c.cluster_id, cluster_id_from_name("example"));
    assert_eq!(c.election, ElectionSettings::phi_default(c.heartbeat_interval));
}

#[test]
fn flags_replace_file_values() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = ConfigOverrides {
        node_id: Some(4),
        cluster_id: Some(99),
        heartbeat_interval: Some("50ms".into()),
        data_dir: Some(dir.path().join("flag-dir")),
        peers: Some(vec![
            "4=127.0.0.1:9004,127.0.0.1:9104".into(),
            "5=127.0.0.1:9005,127.0.0.1:9105".into(),
        ]),
        http_listen: Some("0.0.0.0:9999".into()),
        log_format: Some("json".into()),
        ..Default::default()
    };
    // A 50 ms heartbeat: the default phi election's shortest timeout (10 heartbeats) would
    // not exceed the 500 ms checkpoint interval, so this file names the fixed election.
    let c = load_text(&file(&[], Some("kind = \"fixed\""), PEERS), &overrides).unwrap();
    assert_eq!((c.cluster_id, c.cluster_name.as_deref()), (99, None));
    assert_eq!(c.node_id, 4);
    assert_eq!(c.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(c.data_dir, dir.path().join("flag-dir"));
    assert_eq!(c.peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(c.peer_listen.to_string(), "127.0.0.1:9004");
    assert_eq!(c.http_listen.to_string(), "0.0.0.0:9999");
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn no_file_needs_the_required_fields_from_flags() {
    assert_names(ServerConfig::load(None, &ConfigOverrides::default()), &["cluster", "required"]);
    let dir = tempfile::tempdir().unwrap();
    let overrides = ConfigOverrides {
        cluster: Some("c".into()),
        node_id: Some(1),
        data_dir: Some(dir.path().to_path_buf()),
        peers: Some(vec!["1=127.0.0.1:7001,127.0.0.1:8001".into()]),
        ..Default::default()
    };
    assert_eq!(ServerConfig::load(None, &overrides).unwrap().peers.len(), 1);
    let bad = ConfigOverrides { peers: Some(vec!["1=127.0.0.1:7001".into()]), ..overrides };
    assert_names(ServerConfig::load(None, &bad), &["peers[0]", "ID=PEER_ADDR,HTTP_ADDR"]);
}

#[test]
fn unknown_own_node_id_is_refused() {
    assert_names(load(&[("node_id", "7")]), &["node_id", "7", "[1, 2, 3]"]);
    assert_names(load(&[("node_id", "0")]), &["node_id"]);
}

#[test]
fn duplicate_node_ids_are_refused() {
    let peers = format!("{PEERS}[[peers]]\nid = 2\npeer_addr = \"h:1\"\nhttp_addr = \"h:2\"\n");
    let result = load_text(&file(&[], None, &peers), &ConfigOverrides::default());
    assert_names(result, &["peers", "node id 2", "more than once"]);
}

#[test]
fn duplicate_addresses_are_refused() {
    let peers = PEERS.replace("127.0.0.1:8003", "127.0.0.1:7002");
    let result = load_text(&file(&[], None, &peers), &ConfigOverrides::default());
    assert_names(result, &["peers[id=3].http_addr", "peers[id=2].peer_addr", "127.0.0.1:7002"]);
    let same_listen = load(&[("peer_listen", "\"0.0.0.0:1\""), ("http_listen", "\"0.0.0.0:1\"")]);
    assert_names(same_listen, &["http_listen", "peer_listen"]);
}

#[test]
fn unparsable_addresses_are_refused() {
    let peers = PEERS.replace("127.0.0.1:7002", "127.0.0.1");
    let result = load_text(&file(&[], None, &peers), &ConfigOverrides::default());
    assert_names(result, &["peers[1].peer_addr", "\"127.0.0.1\"", "port"]);
    assert_names(load(&[("http_listen", "\"host:port\"")]), &["http_listen", "host:port"]);
}

#[test]
fn bad_durations_name_the_field_and_the_text() {
    assert_names(load(&[("heartbeat_interval", "\"10x\"")]), &["heartbeat_interval", "10x"]);
    assert_names(load(&[("ttl_max", "\"-5s\"")]), &["ttl_max", "-5s"]);
    let fixed = "kind = \"fixed\"\nmin = \"soon\"";
    assert_names(load_election(fixed, &[]), &["election.min", "soon"]);
    let wrong_type = load(&[("lock_delay", "5")]);
    assert_names(wrong_type, &["lock_delay"]);
}

#[test]
fn zero_durations_are_refused() {
    assert_names(load(&[("lock_delay", "\"0s\"")]), &["lock_delay", "greater than zero"]);
    assert_names(load(&[("request_timeout", "\"0ms\"")]), &["request_timeout"]);
    assert_names(
        load_election("kind = \"phi\"\ntimeout_max = \"0s\"", &[]),
        &["election.timeout_max"],
    );
}

#[test]
fn election_timeout_must_exceed_the_heartbeat() {
    let fixed = load_election("kind = \"fixed\"\nmin = \"100ms\"\nmax = \"300ms\"", &[]);
    assert_names(fixed, &["election.min", "heartbeat_interval"]);
    let empty_range = load_election("kind = \"fixed\"\nmin = \"1s\"\nmax = \"1s\"", &[]);
    assert_names(empty_range, &["election.max"]);
    let phi = load_election("kind = \"phi\"\ntimeout_max = \"150ms\"", &[]);
    assert_names(phi, &["election.timeout_max", "heartbeat_interval"]);
    let jitter = load_election("kind = \"phi\"\njitter_max = \"5s\"", &[]);
    assert_names(jitter, &["election.jitter_max"]);
    let threshold = load_election("kind = \"phi\"\nthreshold = -1.0", &[]);
    assert_names(threshold, &["election.threshold"]);
}

#[test]
fn election_tables_are_checked_for_their_kind() {
    assert_names(load_election("kind = \"gossip\"", &[]), &["election.kind", "gossip"]);
    let fixed_threshold = load_election("kind = \"fixed\"\nthreshold = 8.0", &[]);
    assert_names(fixed_threshold, &["election.threshold", "fixed"]);
    assert_names(load_election("kind = \"phi\"\nmin = \"1s\"", &[]), &["election.min", "phi"]);
    // Without a kind the table is a phi election (the default), and min/max get a hint.
    let default_kind = load_election("min = \"1s\"\nmax = \"2s\"", &[]);
    assert_names(default_kind, &["election.min", "phi", "the default kind", "kind = \"fixed\""]);
}

#[test]
fn ttl_min_above_ttl_max_is_refused() {
    assert_names(load(&[("ttl_min", "\"20s\""), ("ttl_max", "\"10s\"")]), &["ttl_min", "ttl_max"]);
}

#[test]
fn drift_above_the_named_maximum_is_refused() {
    let result = load(&[("drift_bound_ppm", "200000")]);
    assert_names(result, &["drift_bound_ppm", "DRIFT_BOUND_PPM_MAX"]);
    assert_names(load(&[("drift_bound_ppm", "-1")]), &["drift_bound_ppm"]);
}

#[test]
fn checkpoint_interval_must_be_below_the_election_timeout() {
    let fixed = load_election("kind = \"fixed\"\nmin = \"400ms\"\nmax = \"800ms\"", &[]);
    assert_names(fixed, &["checkpoint_interval", "election timeout"]);
    let phi = load_election("kind = \"phi\"\ntimeout_max = \"1s\"", &[]);
    assert_names(phi, &["checkpoint_interval", "500ms"]);
}

#[test]
fn other_ranges_are_refused_with_their_field() {
    assert_names(load(&[("snapshot_every_entries", "0")]), &["snapshot_every_entries"]);
    assert_names(load(&[("log_level", "\"loud=!\"")]), &["log_level"]);
    assert_names(load(&[("log_format", "\"xml\"")]), &["log_format", "xml"]);
    assert_names(load(&[("ttl_min", "\"10ms\"")]), &["ttl_min"]);
    assert_names(load(&[("lock_delay", "\"2m\"")]), &["lock_delay"]);
    assert_names(load(&[("cluster", "\"\"")]), &["cluster", "empty"]);
    assert_names(load(&[("cluster_id", "5")]), &["cluster", "not both"]);
    assert_names(load(&[("cluster", ""), ("cluster_id", "0")]), &["cluster_id", "reserved"]);
    assert_names(load(&[("data_dir", "")]), &["data_dir", "required"]);
    assert_names(load(&[("colour", "\"blue\"")]), &["colour"]);
}

#[test]
fn an_unwritable_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    fs::write(&blocker, b"not a directory").unwrap();
    let overrides = ConfigOverrides { data_dir: Some(blocker.join("data")), ..Default::default() };
    let result = load_text(&file(&[], None, PEERS), &overrides);
    assert_names(result, &["data_dir", "not writable", "a-file"]);
}

#[test]
fn a_data_dir_of_another_node_or_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let configs = ServerConfig::dev_cluster(dir.path(), 3, 17000).unwrap();
    let mut node1 = configs[0].clone();
    node1.check_data_dir().unwrap();
    node1.check_data_dir().unwrap();
    let mut node2_on_node1_dir = configs[1].clone();
    node2_on_node1_dir.data_dir = node1.data_dir.clone();
    let err = node2_on_node1_dir.check_data_dir().unwrap_err().to_string();
    assert!(err.contains("data_dir") && err.contains("node 1 of cluster"), "{err}");
    assert!(err.contains("node 2 of cluster"), "{err}");
    node1.cluster_id = 0xabc;
    let err = node1.check_data_dir().unwrap_err().to_string();
    assert!(
        err.contains("cluster 0xabc") && err.contains(&format!("{:#x}", configs[0].cluster_id)),
        "{err}"
    );
}

#[test]
fn raft_and_lock_configs_are_derived() {
    // 80 ms: the default phi election's shortest timeout (10 heartbeats) stays above the
    // 500 ms checkpoint interval.
    let c = load(&[("heartbeat_interval", "\"80ms\""), ("drift_bound_ppm", "1000")]).unwrap();
    let raft = c.to_raft_config().unwrap();
    assert_eq!(raft.id, 1);
    assert_eq!(raft.heartbeat_interval, Duration::from_millis(80));
    assert_eq!(raft.drift_bound_ppm, 1000);
    assert_eq!(raft.election, ElectionConfig::phi_default(Duration::from_millis(80)));
    let fixed = load_election("kind = \"fixed\"", &[]).unwrap();
    assert_eq!(
        fixed.to_raft_config().unwrap().election,
        ElectionConfig::RandomizedTimeout {
            min: defaults::ELECTION_MIN,
            max: defaults::ELECTION_MAX,
        }
    );
    let lock = c.to_lock_config().unwrap();
    assert_eq!((lock.ttl_min, lock.drift_bound_ppm), (defaults::TTL_MIN, 1000));
    let phi = load_election("kind = \"phi\"\nthreshold = 10.0\ntimeout_max = \"3s\"", &[]).unwrap();
    let ElectionConfig::PhiAccrual { detector, timeout_max, jitter_max } =
        phi.to_raft_config().unwrap().election
    else {
        panic!("a phi election maps to PhiAccrual")
    };
    assert_eq!((detector.threshold, timeout_max), (10.0, Duration::from_secs(3)));
    assert_eq!(jitter_max, Duration::from_millis(150));
    assert_eq!(detector.first_heartbeat_estimate, defaults::HEARTBEAT);
    assert_eq!(phi.election_timeout_min(), Duration::from_millis(1500));
}

#[test]
fn the_fingerprint_covers_shared_settings_only() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = ServerConfig::dev_cluster(dir.path(), 3, 17100).unwrap();
    let fingerprint = nodes[0].settings_fingerprint();
    assert!(nodes.iter().all(|c| c.settings_fingerprint() == fingerprint));
    let mut local = nodes[0].clone();
    local.heartbeat_interval = Duration::from_millis(150);
    local.request_timeout = Duration::from_secs(9);
    assert_eq!(local.settings_fingerprint(), fingerprint, "node-local settings do not count");
    for change in [
        |c: &mut ServerConfig| c.ttl_max = Duration::from_secs(601),
        |c: &mut ServerConfig| c.ttl_min = Duration::from_secs(6),
        |c: &mut ServerConfig| c.lock_delay = Duration::from_secs(6),
        |c: &mut ServerConfig| c.drift_bound_ppm = 501,
    ] {
        let mut other = nodes[0].clone();
        change(&mut other);
        assert_ne!(other.settings_fingerprint(), fingerprint);
    }
}

#[test]
fn dev_cluster_builds_distinct_valid_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = ServerConfig::dev_cluster(dir.path(), 3, 7001).unwrap();
    assert_eq!(nodes.len(), 3);
    for (i, c) in nodes.iter().enumerate() {
        assert_eq!(c.node_id, i as u64 + 1);
        assert_eq!(c.peer_listen.to_string(), format!("127.0.0.1:{}", 7001 + i));
        assert_eq!(c.http_listen.to_string(), format!("127.0.0.1:{}", 7101 + i));
        assert_eq!(c.data_dir, dir.path().join(format!("node{}", i + 1)));
        assert_eq!(c.peers, nodes[0].peers);
        assert_eq!(c.cluster_id, cluster_id_from_name(DEV_CLUSTER_NAME));
    }
    assert!(ServerConfig::dev_cluster(dir.path(), 0, 7001).is_err());
    assert!(ServerConfig::dev_cluster(dir.path(), 3, 65_500).is_err());
}

#[test]
fn cluster_names_hash_with_fnv1a_64() {
    // Test vectors of the FNV reference implementation.
    assert_eq!(cluster_id_from_name(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(cluster_id_from_name("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(cluster_id_from_name("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn peer_flags_parse() {
    let p: PeerConfig = "2=10.0.0.2:7001,node2.example:8001".parse().unwrap();
    assert_eq!((p.id, p.peer_addr.port(), p.http_addr.host()), (2, 7001, "node2.example"));
    assert!("x=1.2.3.4:1,1.2.3.4:2".parse::<PeerConfig>().is_err());
}
