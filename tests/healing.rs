//! Self-healing on swarms of real peers: re-replication after a death,
//! catching up after missed writes and deletes, rebalancing onto a new
//! peer, and scrubbing damaged copies.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Peer, all_alive, get_bytes as get, put_bytes as put, random_bytes, start_swarm, stored_chunks,
    wait_until,
};
use tempfile::TempDir;

const CHUNK: usize = 64 * 1024;

/// How long the swarm may take to heal in these tests.
const HEAL: Duration = Duration::from_secs(60);

fn flags() -> Vec<&'static str> {
    vec![
        "--chunk-size",
        "65536",
        "--rereplicate-after",
        "3s",
        "--repair-interval",
        "1s",
    ]
}

/// For `name` as `peer` sees it: the peers holding the manifest, and the
/// peers holding each chunk.
fn copies(peer: &Peer, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let stat = peer.json(&["stat", name, "--json"]);
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    let chunks = stat["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| list(&c["replicas"]))
        .collect();
    (list(&stat["manifest_replicas"]), chunks)
}

/// Whether every file in `names` has exactly `n` live copies of its
/// manifest and of each chunk, as `peer` sees it.
fn fully_replicated(peer: &Peer, names: &[String], n: usize) -> bool {
    names.iter().all(|name| {
        let (manifest, chunks) = copies(peer, name);
        manifest.len() == n && chunks.iter().all(|c| c.len() == n)
    })
}

fn put_files(peer: &Peer, dir: &Path, count: usize, chunks: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let name = format!("file-{i}");
            let content = random_bytes(chunks * CHUNK + i, 100 + i as u64);
            put(peer, dir, &name, &content);
            (name, content)
        })
        .collect()
}

#[test]
fn a_dead_peers_share_is_copied_back_to_three_after_the_delay() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let files = put_files(&peers[0], dir.path(), 4, 10);
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    // A put returns once two copies are durable; the third lands after.
    wait_until(HEAL, "every file has its 3 copies", || {
        fully_replicated(&peers[1], &names, 3)
    });

    let dead = peers[4].peer_id();
    peers[4].kill9();
    let killed = Instant::now();
    wait_until(
        HEAL,
        "every chunk and manifest is back at 3 live copies",
        || fully_replicated(&peers[1], &names, 3),
    );
    eprintln!(
        "re-replicated {} files after {:?} (with --rereplicate-after 3s)",
        names.len(),
        killed.elapsed()
    );
    for peer in &peers[..4] {
        let (manifest, chunks) = copies(peer, &names[0]);
        assert!(!manifest.contains(&dead) && chunks.iter().all(|c| !c.contains(&dead)));
        for (name, content) in &files {
            assert!(get(peer, dir.path(), name) == *content);
        }
    }
}

#[test]
fn a_peer_back_from_the_dead_catches_up_and_stand_ins_hand_back() {
    let dir = TempDir::new().unwrap();
    let mut extra = flags();
    // A long re-replication delay: the peer is only away, not gone.
    extra[3] = "10m";
    extra.extend([
        "--gc-grace",
        "0s",
        "--gc-interval",
        "200ms",
        "--audit-interval",
        "1s",
    ]);
    let mut peers = start_swarm(dir.path(), 5, &extra);
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    let files = put_files(&peers[0], dir.path(), 3, 8);

    peers[2].kill9();
    // While it is away: a new file, a delete and an overwrite.
    let fresh = random_bytes(9 * CHUNK, 7);
    put(&peers[1], dir.path(), "fresh", &fresh);
    peers[1].ok(&["rm", &files[0].0]);
    let rewritten = random_bytes(5 * CHUNK, 8);
    put(&peers[3], dir.path(), &files[1].0, &rewritten);

    peers[2].restart();
    let all: Vec<&Peer> = peers.iter().collect();
    wait_until(HEAL, "the peer is back", || all_alive(&all, &ids));
    let live = vec!["fresh".to_string(), files[1].0.clone(), files[2].0.clone()];
    let expected_chunks = 3 * (9 + 5 + 9) as u64;
    let hinted = |peers: &[Peer]| -> u64 {
        peers
            .iter()
            .map(|p| p.status()["store"]["hinted_chunks"].as_u64().unwrap())
            .sum()
    };
    // Settled: exactly 3 copies of every live chunk and manifest, nothing
    // of the deleted and overwritten data anywhere, and every copy a
    // stand-in kept handed back and dropped.
    wait_until(HEAL, "the swarm to settle after the peer's return", || {
        fully_replicated(&peers[4], &live, 3)
            && peers.iter().map(stored_chunks).sum::<u64>() == expected_chunks
            && hinted(&peers) == 0
    });
    let mut sorted = live.clone();
    sorted.sort();
    assert_eq!(peers[2].names(), sorted);
    assert!(get(&peers[2], dir.path(), &files[1].0) == rewritten);
    assert!(get(&peers[2], dir.path(), "fresh") == fresh);
}

#[test]
fn a_new_peer_takes_its_share_and_nothing_drops_below_three_copies() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let files = put_files(&peers[0], dir.path(), 6, 20);
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let total_copies: u64 = peers.iter().map(stored_chunks).sum();

    let join = peers[0].swarm_addr();
    let mut extra = flags();
    extra.extend(["--join", join.as_str()]);
    peers.push(Peer::start(&dir.path().join("p5"), &extra));
    let newcomer = &peers[5];
    let started = Instant::now();
    let mut lowest = usize::MAX;
    loop {
        for name in &names {
            let (manifest, chunks) = copies(&peers[1], name);
            lowest = lowest
                .min(manifest.len())
                .min(chunks.iter().map(Vec::len).min().unwrap_or(usize::MAX));
        }
        if stored_chunks(newcomer) > 0
            && fully_replicated(&peers[1], &names, 3)
            && peers.iter().map(stored_chunks).sum::<u64>() == total_copies
        {
            break;
        }
        assert!(started.elapsed() < HEAL, "rebalancing did not settle");
    }
    assert!(
        lowest >= 3,
        "some item had only {lowest} copies during rebalancing"
    );
    let received = stored_chunks(newcomer);
    let share = received as f64 / total_copies as f64;
    eprintln!(
        "the 6th peer received {received} of {total_copies} chunk copies ({share:.3}; ideal 1/6 = 0.167) in {:?}",
        started.elapsed()
    );
    assert!(share > 0.05 && share < 0.35, "share {share}");
    for (name, content) in &files {
        assert!(get(newcomer, dir.path(), name) == *content);
    }
}

#[test]
fn scrub_finds_and_repairs_a_damaged_copy() {
    let dir = TempDir::new().unwrap();
    let peers = start_swarm(dir.path(), 5, &flags());
    let content = random_bytes(CHUNK, 70);
    put(&peers[0], dir.path(), "fragile", &content);
    let (_, chunks) = copies(&peers[0], "fragile");
    let holders: BTreeSet<&String> = chunks[0].iter().collect();
    let holder = peers
        .iter()
        .find(|p| holders.contains(&p.peer_id()))
        .unwrap();
    let segment = holder.data.join("segments").join("00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();

    let report = holder.json(&["scrub", "--json"]);
    assert_eq!(report["damaged"], 1, "{report}");
    assert_eq!(report["repaired"], 1, "{report}");
    let again = holder.json(&["scrub", "--json"]);
    assert_eq!(again["damaged"], 0, "the copy is whole again: {again}");
    assert!(get(holder, dir.path(), "fragile") == content);
}

#[test]
fn a_peer_that_leaves_hands_everything_over_first() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let files = put_files(&peers[0], dir.path(), 4, 12);
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let leaver = peers[2].peer_id();
    assert!(stored_chunks(&peers[2]) > 0);

    let report = peers[2].json(&["leave", "--json"]);
    assert!(report["passes"].as_u64().unwrap() > 0, "{report}");
    peers[2].wait_for_exit(Duration::from_secs(30));

    // At once, with no repair needed: every item has 3 copies elsewhere.
    assert!(fully_replicated(&peers[1], &names, 3));
    for (name, content) in &files {
        let (manifest, chunks) = copies(&peers[3], name);
        assert!(!manifest.contains(&leaver) && chunks.iter().all(|c| !c.contains(&leaver)));
        assert!(get(&peers[4], dir.path(), name) == *content);
    }
}
