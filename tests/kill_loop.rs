//! A peer killed with SIGKILL again and again while clients write, each
//! time restarted and checked: every write it acknowledged reads back
//! whole, and no name shows bytes that no write of it sent (nothing half
//! written). Writes overwrite a small set of names, in three sizes: kept
//! inside the manifest, one chunk, and several chunks.
//!
//! CI runs a few kills (`SHOAL_KILLS`, default 4); `scripts/kill-loop.sh
//! 100` runs the long loop.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Peer, SHOAL, random_bytes, wait_until};

/// Names the writers overwrite.
const NAMES: u64 = 12;
/// Writes in flight at once.
const WRITERS: usize = 3;

/// What is known of one name: the content of its last acknowledged write,
/// and every content written to it without an acknowledgement, which may
/// or may not have landed (and, had it run alongside the acknowledged one,
/// may be newer).
#[derive(Default)]
struct Expected {
    acknowledged: Option<blake3::Hash>,
    unsure: Vec<blake3::Hash>,
}

fn content(serial: u64) -> Vec<u8> {
    let size = match serial % 3 {
        0 => 3_000,               // inline
        1 => 200_000,             // one chunk
        _ => 2 * 1024 * 1024 + 7, // three chunks
    };
    random_bytes(size, 10_000 + serial)
}

fn spawn_put(api: &str, path: &Path, name: &str) -> Child {
    Command::new(SHOAL)
        .args(["put", path.to_str().unwrap(), "--name", name])
        .env("SHOAL_API", api)
        .env_remove("SHOAL_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a put")
}

#[test]
fn acknowledged_writes_survive_repeated_kill_9() {
    let kills: u64 = std::env::var("SHOAL_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(4);
    let tmp = tempfile::tempdir().unwrap();
    let mut peer = Peer::start(&tmp.path().join("peer"), &["--chunk-size", "1MiB"]);
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut serial = 0u64;
    let mut acknowledged_total = 0u64;

    for round in 0..kills {
        // Writers run until the kill, at a moment that varies by round.
        let run_for = Duration::from_millis(300 + (round * 379) % 1200);
        let started = Instant::now();
        let mut running: Vec<(Child, String, blake3::Hash)> = Vec::new();
        while started.elapsed() < run_for {
            running.retain_mut(|(child, name, hash)| {
                match child.try_wait().expect("wait on a put") {
                    None => true,
                    Some(status) => {
                        let entry = expected.entry(name.clone()).or_default();
                        if status.success() {
                            entry.acknowledged = Some(*hash);
                            entry.unsure.retain(|h| h != hash);
                            acknowledged_total += 1;
                        }
                        false
                    }
                }
            });
            while running.len() < WRITERS {
                serial += 1;
                let name = format!("k/{}", serial % NAMES);
                let bytes = content(serial);
                let path = tmp.path().join(format!("src-{serial}"));
                std::fs::write(&path, &bytes).unwrap();
                let hash = blake3::hash(&bytes);
                expected.entry(name.clone()).or_default().unsure.push(hash);
                running.push((spawn_put(&peer.api, &path, &name), name, hash));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        peer.kill9();
        // Puts in flight now fail or, if acknowledged just before the
        // kill, count as acknowledged.
        for (mut child, name, hash) in running {
            let status = child.wait().expect("wait on a put");
            if status.success() {
                let entry = expected.entry(name).or_default();
                entry.acknowledged = Some(hash);
                entry.unsure.retain(|h| *h != hash);
                acknowledged_total += 1;
            }
        }
        peer.restart();
        verify(&peer, tmp.path(), &expected, round);
    }
    eprintln!("{kills} kills, {serial} writes, {acknowledged_total} acknowledged, all intact");
    assert!(
        acknowledged_total >= kills,
        "too few writes were acknowledged to test anything: {acknowledged_total}"
    );
}

/// Reads every name back: an acknowledged name must hold its last
/// acknowledged content or one written after it; any name must hold
/// nothing or some content written to it.
fn verify(peer: &Peer, dir: &Path, expected: &HashMap<String, Expected>, round: u64) {
    wait_until(
        Duration::from_secs(30),
        "the restarted peer answers",
        || peer.cli(&["status"]).status.success(),
    );
    for (name, known) in expected {
        let out = dir.join("read-back");
        let got = peer.cli(&["get", name, "-o", out.to_str().unwrap()]);
        let found = got.status.success();
        let held = found.then(|| blake3::hash(&std::fs::read(&out).unwrap()));
        let allowed = known.acknowledged.iter().chain(&known.unsure);
        match (held, known.acknowledged) {
            (None, Some(_)) => panic!(
                "round {round}: acknowledged {name} is gone: {}\n{}",
                String::from_utf8_lossy(&got.stderr),
                peer.log_text()
            ),
            (None, None) => {}
            (Some(hash), _) => assert!(
                allowed.clone().any(|h| *h == hash),
                "round {round}: {name} holds bytes no acknowledged-or-later write sent"
            ),
        }
    }
}
