//! Space under faults on a swarm of real peers: names overwritten again and
//! again while peers are killed and restarted end up holding about the
//! live data's three copies once the grace time has passed, because a peer
//! that missed releases lets go at the next write of the name.

mod common;

use std::time::Duration;

use common::{Peer, get_bytes as get, put_bytes as put, random_bytes, start_swarm, wait_until};
use tempfile::TempDir;

const CHUNK: usize = 64 * 1024;
const NAMES: usize = 8;
const ROUNDS: usize = 12;

fn flags() -> Vec<&'static str> {
    vec![
        "--chunk-size",
        "65536",
        "--gc-grace",
        "2s",
        "--gc-interval",
        "500ms",
        "--audit-interval",
        "5s",
        "--repair-interval",
        "1s",
    ]
}

/// Bytes of chunk data every peer holds together.
fn held(peers: &[Peer]) -> u64 {
    peers
        .iter()
        .map(|p| p.status()["store"]["bytes"].as_u64().unwrap())
        .sum()
}

#[test]
fn overwrites_with_peers_killed_and_restarted_give_their_space_back() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let mut live = vec![Vec::new(); NAMES];
    let mut down: Option<usize> = None;
    for round in 0..ROUNDS {
        // A peer goes down for one round in three, and comes back for the
        // next; the last rounds run with everyone up.
        if let Some(i) = down.take() {
            peers[i].restart();
        } else if round % 3 == 1 && round < ROUNDS - 2 {
            let i = 1 + round % 4;
            peers[i].kill9();
            down = Some(i);
        }
        for (n, content) in live.iter_mut().enumerate() {
            *content = random_bytes(4 * CHUNK + n, (round * NAMES + n) as u64);
            // Through a peer that is up (peer 0 never goes down).
            let through = [0, 2, 3][n % 3];
            let through = if down == Some(through) { 0 } else { through };
            put(&peers[through], dir.path(), &format!("name-{n}"), content);
        }
    }
    let live_bytes: u64 = live.iter().map(|c| 3 * c.len() as u64).sum();
    let written = live_bytes * ROUNDS as u64;
    wait_until(
        Duration::from_secs(90),
        "the peers to hold at most 1.5 times the live data's three copies",
        || held(&peers) * 2 <= live_bytes * 3,
    );
    eprintln!(
        "wrote {written} bytes in all, {live_bytes} live; the peers hold {}",
        held(&peers)
    );
    for (n, content) in live.iter().enumerate() {
        assert!(get(&peers[4], dir.path(), &format!("name-{n}")) == *content);
    }
}
