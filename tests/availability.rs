//! Availability on a swarm of real peers: with one peer killed and another
//! hung (SIGSTOP: its connections stay open, it answers nothing), puts go
//! on through the others and read back anywhere; once both are back,
//! every copy returns to exactly its owners with no operator action.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Peer, get_bytes as get, random_bytes, wait_until};
use tempfile::TempDir;

const MIB: usize = 1 << 20;

/// How long the swarm may take to hand everything back.
const HEAL: Duration = Duration::from_secs(120);

fn flags() -> Vec<&'static str> {
    vec![
        "--chunk-size",
        "262144",
        "--repair-interval",
        "1s",
        "--peer-timeout",
        "1s",
    ]
}

fn signal(peer: &Peer, which: &str) {
    let status = Command::new("kill")
        .args([which, &peer.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} failed");
}

/// Whether, as `peer` sees it, `name`'s manifest and every chunk have
/// exactly `n` copies.
fn exactly(peer: &Peer, name: &str, n: usize) -> bool {
    let stat = peer.json(&["stat", name, "--json"]);
    let count = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len);
    count(&stat["manifest_replicas"]) == n
        && stat["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| count(&c["replicas"]) == n)
}

/// Copies a peer holds for others (stand-in copies, or copies left from
/// an older ring), per its last repair pass.
fn held_for_others(peer: &Peer) -> u64 {
    let repair = &peer.status()["repair"];
    repair["held_chunks"].as_u64().unwrap() + repair["held_records"].as_u64().unwrap()
}

#[test]
fn puts_go_on_with_one_peer_killed_and_one_hung_and_copies_return_to_their_owners() {
    let dir = TempDir::new().unwrap();
    let mut peers = common::start_swarm(dir.path(), 5, &flags());
    peers[4].kill9();
    signal(&peers[3], "-STOP");

    let mut files = Vec::new();
    for i in 0..6 {
        let name = format!("file-{i}");
        let content = random_bytes((1 + i % 5) * MIB + i, 500 + i as u64);
        let path = dir.path().join(&name);
        std::fs::write(&path, &content).unwrap();
        let answer = peers[i % 3].json(&["put", path.to_str().unwrap(), "--name", &name, "--json"]);
        assert!(
            answer["version"].as_str().is_some_and(|v| !v.is_empty()),
            "a put answers with its version: {answer}"
        );
        files.push((name, content));
    }
    for (name, content) in &files {
        for peer in &peers[..3] {
            assert!(get(peer, dir.path(), name) == *content, "{name} read back");
        }
    }

    signal(&peers[3], "-CONT");
    peers[4].restart();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    wait_until(HEAL, "every copy back on exactly its three owners", || {
        names.iter().all(|name| exactly(&peers[0], name, 3))
    });
    wait_until(HEAL, "no peer holds copies for others", || {
        peers.iter().all(|p| held_for_others(p) == 0)
    });
    for (name, content) in &files {
        assert!(
            get(&peers[4], dir.path(), name) == *content,
            "{name} through the restarted peer"
        );
        assert!(
            get(&peers[3], dir.path(), name) == *content,
            "{name} through the resumed peer"
        );
    }
}
