//! An interrupted `shoal get` resumes where it stopped: the verified chunks
//! already written are kept beside the destination, re-checked, and only
//! the rest is fetched; a file that changed in between restarts from the
//! first chunk that differs.

mod common;

use std::path::Path;

use common::{Peer, random_bytes};

/// Small chunks, so a few megabytes make many of them.
const CHUNK: usize = 64 * 1024;

fn put(peer: &Peer, dir: &Path, name: &str, content: &[u8]) {
    let local = dir.join("upload");
    std::fs::write(&local, content).unwrap();
    peer.ok(&["put", local.to_str().unwrap(), "--name", name]);
}

/// Runs `get NAME -o DEST`; returns its stderr.
fn get(peer: &Peer, name: &str, dest: &Path) -> String {
    let out = peer.cli(&["get", name, "-o", dest.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "get failed: {stderr}");
    stderr
}

#[test]
fn a_get_resumes_after_the_verified_chunks_it_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &["--chunk-size", "65536"]);
    let content = random_bytes(16 * CHUNK + 123, 1);
    put(&peer, tmp.path(), "big", &content);

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dest = out.join("big");
    let partial = out.join(".big.shoal-partial");
    // An earlier download got five chunks and part of a sixth, whose last
    // bytes never reached the disk.
    let mut earlier = content[..5 * CHUNK + 1000].to_vec();
    earlier[5 * CHUNK + 999] ^= 0xff;
    std::fs::write(&partial, &earlier).unwrap();

    let stderr = get(&peer, "big", &dest);
    assert!(
        stderr.contains(&format!("resuming big after {} verified bytes", 5 * CHUNK)),
        "{stderr}"
    );
    assert!(std::fs::read(&dest).unwrap() == content);
    assert!(!partial.exists(), "the partial file became the destination");

    // Done: a second get starts afresh and has nothing to resume.
    let again = get(&peer, "big", &dest);
    assert!(!again.contains("resuming"), "{again}");
    assert!(std::fs::read(&dest).unwrap() == content);
}

#[test]
fn a_changed_file_restarts_from_the_first_chunk_that_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &["--chunk-size", "65536"]);
    let old = random_bytes(8 * CHUNK, 2);
    put(&peer, tmp.path(), "doc", &old);

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dest = out.join("doc");
    let partial = out.join(".doc.shoal-partial");
    std::fs::write(&partial, &old[..6 * CHUNK]).unwrap();

    // A new version shares its first three chunks with the old one.
    let mut new = old.clone();
    new[3 * CHUNK + 10] ^= 1;
    put(&peer, tmp.path(), "doc", &new);
    let stderr = get(&peer, "doc", &dest);
    assert!(
        stderr.contains(&format!("resuming doc after {} verified bytes", 3 * CHUNK)),
        "{stderr}"
    );
    assert!(std::fs::read(&dest).unwrap() == new);

    // Nothing in common: from the start, without a word about resuming.
    std::fs::write(&partial, random_bytes(4 * CHUNK, 3)).unwrap();
    let stderr = get(&peer, "doc", &dest);
    assert!(!stderr.contains("resuming"), "{stderr}");
    assert!(std::fs::read(&dest).unwrap() == new);
    assert!(!partial.exists());
}
