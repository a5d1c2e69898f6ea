//! A status crosses the HTTP API as JSON; a peer that has been silent for long has an infinite
//! phi, which JSON cannot carry. It must still round-trip (seen in `palisade status` after the
//! leader of a dev cluster was killed: every surviving node's answer failed to parse).

use palisade_node::raft::PeerStatus;

fn peer(phi: f64) -> PeerStatus {
    PeerStatus { id: 2, progress: None, phi, offset: None }
}

#[test]
fn an_infinite_phi_round_trips_through_json() {
    let json = serde_json::to_string(&peer(f64::INFINITY)).expect("serializes");
    assert!(json.contains("\"phi\":null"), "{json}");
    let back: PeerStatus = serde_json::from_str(&json).expect("parses");
    assert_eq!(back.phi, f64::INFINITY);
}

#[test]
fn a_finite_phi_round_trips_exactly() {
    let json = serde_json::to_string(&peer(3.25)).expect("serializes");
    let back: PeerStatus = serde_json::from_str(&json).expect("parses");
    assert_eq!(back.phi, 3.25);
}
