//! The replicated data path on swarms of real peers: placement on three
//! peers, reads through any peer, surviving a killed peer, quorum failures,
//! concurrent writers, resumed uploads, damaged copies and deletion.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{
    Peer, get_bytes as get, poll_until, put_bytes as put, random_bytes, start_swarm, stored_chunks,
    wait_until,
};
use tempfile::TempDir;

/// Small chunks, so that small files spread over many peers.
const CHUNK: usize = 64 * 1024;
const CHUNK_FLAG: &str = "65536";

/// How long the swarm may take to agree after a change.
const SETTLE: Duration = Duration::from_secs(30);

/// How long stand-ins may take to hand copies back: a repair pass runs
/// every 30 s by default.
const HAND_BACK: Duration = Duration::from_secs(90);

fn flags() -> Vec<&'static str> {
    vec!["--chunk-size", CHUNK_FLAG]
}

fn stat(peer: &Peer, name: &str) -> serde_json::Value {
    peer.json(&["stat", name, "--json"])
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// Each chunk's replicas, in file order.
fn chunk_replicas(stat: &serde_json::Value) -> Vec<Vec<String>> {
    stat["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| strings(&c["replicas"]))
        .collect()
}

fn transfer(peer: &Peer, field: &str) -> u64 {
    peer.status()["transfer"][field].as_u64().unwrap()
}

#[test]
fn files_live_on_three_peers_and_read_back_through_every_peer() {
    let dir = TempDir::new().unwrap();
    let peers = start_swarm(dir.path(), 5, &flags());
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();

    let sizes = [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        10 * CHUNK + 5,
        24 * CHUNK + 3,
    ];
    let mut files = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("dir/file-{i}");
        let content = random_bytes(*size, i as u64 + 1);
        put(&peers[0], dir.path(), &name, &content);
        files.push((name, content));
    }

    for peer in &peers {
        for (name, content) in &files {
            assert!(
                get(peer, dir.path(), name) == *content,
                "{name} read through {} differs",
                peer.api
            );
        }
        let listed = peer.names();
        let expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(listed, expected, "ls through {} lists every file", peer.api);
    }

    let mut held_by: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut all_chunks = BTreeSet::new();
    for (name, _) in &files {
        let stat = stat(&peers[3], name);
        let manifest: BTreeSet<String> = strings(&stat["manifest_replicas"]).into_iter().collect();
        assert_eq!(manifest.len(), 3, "{name}'s manifest is on 3 peers");
        for (index, replicas) in chunk_replicas(&stat).into_iter().enumerate() {
            let distinct: BTreeSet<String> = replicas.iter().cloned().collect();
            assert_eq!(
                (replicas.len(), distinct.len()),
                (3, 3),
                "chunk {index} of {name} is on 3 distinct peers: {replicas:?}"
            );
            let hash = stat["chunks"][index]["blake3"].as_str().unwrap().to_owned();
            all_chunks.insert(hash.clone());
            for peer in distinct {
                assert!(ids.contains(&peer));
                held_by.entry(peer).or_default().insert(hash.clone());
            }
        }
    }
    for (peer, held) in &held_by {
        assert!(
            held.len() < all_chunks.len(),
            "{peer} holds all {} chunks",
            all_chunks.len()
        );
    }
    assert_eq!(held_by.len(), 5, "every peer holds some chunks");
}

#[test]
fn deleting_frees_every_replica_but_keeps_shared_chunks() {
    let dir = TempDir::new().unwrap();
    let mut extra = flags();
    extra.extend([
        "--gc-grace",
        "0s",
        "--gc-interval",
        "200ms",
        "--audit-interval",
        "1s",
    ]);
    let mut peers = start_swarm(dir.path(), 5, &extra);
    let whole = random_bytes(20 * CHUNK, 7);
    // `part` shares its first eight chunks with `whole`.
    let part = whole[..8 * CHUNK].to_vec();
    put(&peers[0], dir.path(), "whole", &whole);
    put(&peers[1], dir.path(), "part", &part);
    let total = |peers: &[Peer]| peers.iter().map(stored_chunks).sum::<u64>();
    assert_eq!(total(&peers), 3 * 20);

    peers[2].ok(&["rm", "whole"]);
    for peer in &peers {
        assert!(!peer.names().contains(&"whole".to_string()));
        assert!(
            !peer
                .cli(&["get", "whole", "-o", "/dev/null"])
                .status
                .success()
        );
    }
    wait_until(SETTLE, "only the shared chunks' replicas remain", || {
        total(&peers) == 3 * 8
    });
    assert!(get(&peers[4], dir.path(), "part") == part);

    // A peer that is down when a file is deleted misses the release; once
    // back, it finds out by auditing its references and frees its copies.
    let absent = (0..5)
        .find(|&i| stored_chunks(&peers[i]) > 0)
        .expect("some peer holds part's chunks");
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    peers[absent].kill9();
    let other = (absent + 1) % 5;
    peers[other].ok(&["rm", "part"]);
    peers[absent].restart();
    let all: Vec<&Peer> = peers.iter().collect();
    wait_until(SETTLE, "the restarted peer is back", || {
        common::all_alive(&all, &ids)
    });
    wait_until(SETTLE, "every copy is freed", || total(&peers) == 0);
    assert!(
        peers[absent]
            .log_text()
            .contains("released the chunks of a version that is gone"),
        "the audit freed the absent peer's copies"
    );
}

#[test]
fn a_killed_peer_loses_nothing_and_puts_go_on() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let mut files = Vec::new();
    for i in 0..3 {
        let content = random_bytes(12 * CHUNK + i, 20 + i as u64);
        put(&peers[0], dir.path(), &format!("before-{i}"), &content);
        files.push((format!("before-{i}"), content));
    }

    // Read at once, before anyone has noticed the death.
    let dead = peers[2].peer_id();
    peers[2].kill9();
    for peer in peers.iter().filter(|p| p.api != peers[2].api) {
        for (name, content) in &files {
            assert!(
                get(peer, dir.path(), name) == *content,
                "{name} via {}",
                peer.api
            );
        }
    }

    let content = random_bytes(16 * CHUNK, 30);
    put(&peers[1], dir.path(), "after", &content);
    files.push(("after".into(), content));
    let stat = stat(&peers[3], "after");
    for replicas in chunk_replicas(&stat) {
        assert_eq!(replicas.len(), 3, "a stand-in keeps the third copy");
        assert!(!replicas.contains(&dead));
    }
    let hinted: u64 = peers
        .iter()
        .filter(|p| p.api != peers[2].api)
        .map(|p| p.status()["store"]["hinted_chunks"].as_u64().unwrap())
        .sum();
    assert!(
        hinted > 0,
        "copies kept for the dead owner are recorded as hints"
    );

    // Back on its data directory (rejoining through the members it
    // remembers), it reads everything, its own old copies included.
    peers[2].restart_with(&flags());
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    let all: Vec<&Peer> = peers.iter().collect();
    wait_until(SETTLE, "the restarted peer is back", || {
        common::all_alive(&all, &ids)
    });
    for (name, content) in &files {
        assert!(get(&peers[2], dir.path(), name) == *content);
    }
}

#[test]
fn a_put_needs_only_w_peers_one_alone_fails_cleanly_and_a_lost_chunk_is_named() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 5, &flags());
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();

    // Find a chunk whose three holders can all die while the manifest
    // stays readable (its two other owners survive).
    let mut target = None;
    for attempt in 0..8 {
        let name = format!("probe-{attempt}");
        put(
            &peers[0],
            dir.path(),
            &name,
            &random_bytes(32 * CHUNK, 40 + attempt),
        );
        let stat = stat(&peers[0], &name);
        let manifest: BTreeSet<String> = strings(&stat["manifest_replicas"]).into_iter().collect();
        for (index, replicas) in chunk_replicas(&stat).into_iter().enumerate() {
            let survivors: Vec<&String> = ids.iter().filter(|id| !replicas.contains(id)).collect();
            if survivors.iter().all(|s| manifest.contains(*s)) {
                target = Some((name.clone(), index, replicas));
                break;
            }
        }
        if target.is_some() {
            break;
        }
    }
    let (name, index, holders) = target.expect("some chunk fits in 256 tries");
    let doomed: Vec<usize> = (0..5).filter(|&i| holders.contains(&ids[i])).collect();
    let alive: Vec<usize> = (0..5).filter(|i| !doomed.contains(i)).collect();
    for &i in &doomed {
        peers[i].kill9();
    }
    let reader = alive[0];
    wait_until(SETTLE, "the survivors see the three deaths", || {
        alive.iter().all(|&a| {
            doomed
                .iter()
                .all(|&d| peers[a].state_of(&ids[d]).as_deref() == Some("dead"))
        })
    });

    let out = peers[reader].cli(&[
        "get",
        &name,
        "-o",
        dir.path().join("lost").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains(&format!("chunk {index} ")) && error.contains("missing"),
        "the error names the lost chunk: {error}"
    );
    common::assert_one_line_error(&out, "missing");

    // Two peers of five still take a put: every chunk is durable on both
    // of them (W = 2), owners or not.
    let two = random_bytes(32 * CHUNK, 98);
    put(&peers[reader], dir.path(), "two", &two);
    assert!(get(&peers[alive[1]], dir.path(), "two") == two);

    // One peer alone cannot.
    peers[alive[1]].kill9();
    wait_until(SETTLE, "the reader sees a fourth death", || {
        peers[reader].state_of(&ids[alive[1]]).as_deref() == Some("dead")
    });
    let path = dir.path().join("half");
    std::fs::write(&path, random_bytes(32 * CHUNK, 99)).unwrap();
    let out = peers[reader].cli(&["put", path.to_str().unwrap(), "--name", "half"]);
    common::assert_one_line_error(&out, "peers needed answered");

    // Once the others are back, nothing of the failed put is visible.
    for &i in doomed.iter().chain(&alive[1..]) {
        peers[i].restart_with(&flags());
    }
    let all: Vec<&Peer> = peers.iter().collect();

    if !poll_until(SETTLE, || common::all_alive(&all, &ids)) {
        let logs: Vec<String> = peers
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.api, p.log_text()))
            .collect();
        panic!("not all five alive again:\n{}", logs.join("\n"));
    }
    for peer in &peers {
        assert!(!peer.names().contains(&"half".to_string()));
    }
    // "two" lives on the stand-ins that took it until a repair pass hands
    // it to its owners, which may all be back and answer before that.
    let download = dir.path().join("two-after");
    wait_until(HAND_BACK, "two handed back to its owners", || {
        let out = peers[doomed[0]].cli(&["get", "two", "-o", download.to_str().unwrap()]);
        out.status.success() && std::fs::read(&download).is_ok_and(|got| got == two)
    });
    assert!(get(&peers[reader], dir.path(), &name).len() == 32 * CHUNK);
}

#[test]
fn concurrent_puts_of_one_name_converge_everywhere() {
    let dir = TempDir::new().unwrap();
    let peers = start_swarm(dir.path(), 5, &flags());
    let a = random_bytes(6 * CHUNK, 50);
    let b = random_bytes(7 * CHUNK, 51);
    let (path_a, path_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&path_a, &a).unwrap();
    std::fs::write(&path_b, &b).unwrap();
    for _ in 0..3 {
        let spawn = |peer: &Peer, path: &Path| {
            common::command_in(None)
                .arg("put")
                .arg(path)
                .args(["--name", "contested", "--api", &peer.api])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut first = spawn(&peers[1], &path_a);
        let mut second = spawn(&peers[3], &path_b);
        assert!(first.wait().unwrap().success());
        assert!(second.wait().unwrap().success());

        let versions: BTreeSet<String> = peers
            .iter()
            .map(|p| stat(p, "contested")["version"].to_string())
            .collect();
        assert_eq!(versions.len(), 1, "every peer reads the same version");
        let winner = get(&peers[0], dir.path(), "contested");
        assert!(winner == a || winner == b);
        for peer in &peers {
            assert!(get(peer, dir.path(), "contested") == winner);
        }
        // Read repair leaves every owner with the winning version.
        wait_until(SETTLE, "all three manifest owners agree", || {
            stat(&peers[2], "contested")["manifest_replicas"]
                .as_array()
                .unwrap()
                .len()
                == 3
        });
    }
}

#[test]
fn a_resumed_upload_sends_only_what_is_missing() {
    let dir = TempDir::new().unwrap();
    let peers = start_swarm(dir.path(), 5, &flags());
    let coordinator = &peers[0];
    let content = random_bytes(40 * CHUNK, 60);

    // Send the first half, then cut the connection.
    let sent_before = transfer(coordinator, "chunk_bytes_sent");
    let url = coordinator.api.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&url).unwrap();
    write!(
        stream,
        "PUT /v1/file?name=resumed HTTP/1.1\r\nHost: {url}\r\nContent-Length: {}\r\n\r\n",
        content.len()
    )
    .unwrap();
    stream.write_all(&content[..20 * CHUNK + 100]).unwrap();
    stream.flush().unwrap();
    // Wait until the chunks received are placed, then hang up.
    let placed = poll_until(SETTLE, || {
        transfer(coordinator, "chunk_bytes_sent") - sent_before > 0
            && peers.iter().map(stored_chunks).sum::<u64>() >= 3 * 20
    });
    assert!(placed, "the first half's chunks reach their owners");
    drop(stream);
    wait_until(SETTLE, "the cut upload is abandoned", || {
        coordinator.log_text().contains("was interrupted")
    });
    assert!(!coordinator.names().contains(&"resumed".to_string()));
    let first_attempt = transfer(coordinator, "chunk_bytes_sent") - sent_before;

    put(coordinator, dir.path(), "resumed", &content);
    let second_attempt = transfer(coordinator, "chunk_bytes_sent") - sent_before - first_attempt;

    // What one complete upload costs: every copy not on the coordinator.
    let me = coordinator.peer_id();
    let stat = stat(coordinator, "resumed");
    let remote_copies: u64 = chunk_replicas(&stat)
        .iter()
        .map(|r| r.iter().filter(|p| **p != me).count() as u64)
        .sum();
    let one_upload = remote_copies * CHUNK as u64;
    assert!(first_attempt > 0 && second_attempt < one_upload);
    assert_eq!(
        first_attempt + second_attempt,
        one_upload,
        "no chunk was sent twice to a peer that had it"
    );

    // The same content under another name sends nothing at all.
    put(coordinator, dir.path(), "copy", &content);
    let third =
        transfer(coordinator, "chunk_bytes_sent") - sent_before - first_attempt - second_attempt;
    assert_eq!(third, 0);
    assert!(get(&peers[3], dir.path(), "copy") == content);
}

#[test]
fn a_damaged_copy_is_passed_over_and_all_damaged_copies_are_an_error() {
    let dir = TempDir::new().unwrap();
    let peers = start_swarm(dir.path(), 5, &flags());
    // One chunk, the first each of its holders ever stored: it starts
    // their first segment file.
    let content = random_bytes(CHUNK, 70);
    put(&peers[0], dir.path(), "fragile", &content);
    let holders = chunk_replicas(&stat(&peers[0], "fragile")).remove(0);
    let holder_peers: Vec<&Peer> = peers
        .iter()
        .filter(|p| holders.contains(&p.peer_id()))
        .collect();
    assert_eq!(holder_peers.len(), 3);

    let damage = |peer: &Peer| {
        let segment = peer.data.join("segments").join("00000000.seg");
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&segment, bytes).unwrap();
    };
    damage(holder_peers[0]);
    // Read through the damaged peer itself, which tries its own copy first.
    assert!(get(holder_peers[0], dir.path(), "fragile") == content);
    for peer in &peers {
        assert!(get(peer, dir.path(), "fragile") == content);
    }

    damage(holder_peers[1]);
    damage(holder_peers[2]);
    let out = peers[0].cli(&[
        "get",
        "fragile",
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    common::assert_one_line_error(&out, "could not be read from any replica");
}
