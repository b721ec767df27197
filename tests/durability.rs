//! Acknowledged data survives kill -9; a full disk loses nothing; deleted
//! data gives its space back.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Peer, assert_one_line_error, random_bytes, wait_until};

#[test]
fn acknowledged_uploads_survive_kill_9_mid_write() {
    let tmp = tempfile::tempdir().unwrap();
    let mut peer = Peer::start(&tmp.path().join("peer"), &[]);
    let mut uploads = Vec::new();
    for i in 0..12u64 {
        let content = random_bytes(300_000 + i as usize * 250_000, 100 + i);
        let path = tmp.path().join(format!("src-{i}"));
        std::fs::write(&path, &content).unwrap();
        let child = spawn_put(&peer, &path, &format!("f{i}"));
        uploads.push((format!("f{i}"), content, child));
        if i == 5 {
            // Kill the peer while the later uploads are in flight.
            wait_until(
                Duration::from_secs(20),
                "a first acknowledged upload",
                || peer.json(&["status", "--json"])["store"]["files"].as_u64() > Some(0),
            );
            peer.kill9();
        }
    }
    let acknowledged: Vec<(String, Vec<u8>)> = uploads
        .into_iter()
        .filter_map(|(name, content, child)| {
            child
                .wait_with_output()
                .unwrap()
                .status
                .success()
                .then_some((name, content))
        })
        .collect();
    assert!(!acknowledged.is_empty());

    peer.restart();
    for (name, content) in &acknowledged {
        let out = tmp.path().join("check");
        peer.ok(&["get", name, "-o", out.to_str().unwrap()]);
        assert!(
            std::fs::read(&out).unwrap() == *content,
            "{name} differs after kill -9"
        );
    }
    // Whatever was not acknowledged is absent or complete, never partial.
    for name in peer.names() {
        let name = name.as_str();
        let out = tmp.path().join("check");
        peer.ok(&["get", name, "-o", out.to_str().unwrap()]);
    }
}

#[test]
fn deleted_files_give_their_disk_space_back() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(
        &tmp.path().join("peer"),
        &["--gc-grace", "0s", "--gc-interval", "100ms"],
    );
    let shared = random_bytes(4 * 1024 * 1024, 77);
    let a = tmp.path().join("a");
    std::fs::write(&a, &shared).unwrap();
    peer.ok(&["put", a.to_str().unwrap(), "--name", "a"]);
    peer.ok(&["put", a.to_str().unwrap(), "--name", "copy-of-a"]);
    let store = |key: &str| {
        peer.json(&["status", "--json"])["store"][key]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        store("bytes"),
        shared.len() as u64,
        "identical content is stored once"
    );
    assert!(store("disk_bytes") >= shared.len() as u64);

    peer.ok(&["rm", "a"]);
    std::thread::sleep(Duration::from_millis(300)); // let a collection pass run
    assert_eq!(
        store("bytes"),
        shared.len() as u64,
        "chunks still used by copy-of-a must stay"
    );
    let out = tmp.path().join("out");
    peer.ok(&["get", "copy-of-a", "-o", out.to_str().unwrap()]);

    peer.ok(&["rm", "copy-of-a"]);
    wait_until(Duration::from_secs(10), "space to be reclaimed", || {
        store("bytes") == 0
    });
    let disk = store("disk_bytes");
    assert!(
        disk < 1024 * 1024,
        "{disk} bytes still on disk after deleting everything"
    );
}

/// A tmpfs of `size` mounted under `tmp`, unmounted when dropped; `None`
/// where mounting is not allowed (it needs root).
fn small_disk(tmp: &std::path::Path, size: &str) -> Option<SmallDisk> {
    let dir = tmp.join("small-disk");
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root)");
        return None;
    }
    Some(SmallDisk(dir))
}

struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_upload_cleanly_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = small_disk(tmp.path(), "24m") else {
        return;
    };
    let small = disk.0.clone();
    let peer = Peer::start(&small.join("peer"), &[]);
    let early = random_bytes(2 * 1024 * 1024, 3);
    let early_path = tmp.path().join("early");
    std::fs::write(&early_path, &early).unwrap();
    peer.ok(&["put", early_path.to_str().unwrap(), "--name", "early"]);

    let big = tmp.path().join("big");
    std::fs::write(&big, random_bytes(40 * 1024 * 1024, 4)).unwrap();
    assert_one_line_error(&peer.cli(&["put", big.to_str().unwrap()]), "disk is full");

    assert_eq!(peer.names(), ["early"]);
    let out = tmp.path().join("out");
    peer.ok(&["get", "early", "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == early);

    // The space the failed upload took is given back, so smaller writes work.
    let later = tmp.path().join("later");
    std::fs::write(&later, random_bytes(1024 * 1024, 5)).unwrap();
    peer.ok(&["put", later.to_str().unwrap()]);
}

#[test]
fn sigterm_during_an_upload_stops_cleanly_without_acknowledging_it() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let mut peer = Peer::start(&tmp.path().join("peer"), &["--shutdown-grace", "1s"]);
    let kept = tmp.path().join("kept");
    std::fs::write(&kept, random_bytes(100_000, 8)).unwrap();
    peer.ok(&["put", kept.to_str().unwrap()]);

    // An upload that has sent part of its body and then stalls.
    let addr = peer.api.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "PUT /v1/files/stalled HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 4000000\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&random_bytes(1_500_000, 9)).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the partial upload to be chunked",
        || peer.json(&["status", "--json"])["store"]["chunks"].as_u64() > Some(1),
    );

    let started = std::time::Instant::now();
    peer.stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(
        !answer.contains("201"),
        "the stalled upload was acknowledged: {answer}"
    );

    peer.restart();
    let names = peer.names();
    assert_eq!(names, ["kept"]);
}

#[test]
fn concurrent_puts_of_one_name_leave_exactly_one_complete_version() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let versions: Vec<Vec<u8>> = (0..6)
        .map(|i| random_bytes(700_000 + i * 1000, 50 + i as u64))
        .collect();
    let children: Vec<_> = versions
        .iter()
        .enumerate()
        .map(|(i, content)| {
            let path = tmp.path().join(format!("v{i}"));
            std::fs::write(&path, content).unwrap();
            spawn_put(&peer, &path, "contended")
        })
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let out = tmp.path().join("out");
    peer.ok(&["get", "contended", "-o", out.to_str().unwrap()]);
    let got = std::fs::read(&out).unwrap();
    assert!(
        versions.contains(&got),
        "the result must be one of the versions written, whole"
    );
    assert_eq!(peer.json(&["status", "--json"])["store"]["files"], 1);
}

/// Starts `shoal put PATH --name NAME` against `peer` without waiting.
fn spawn_put(peer: &Peer, path: &std::path::Path, name: &str) -> std::process::Child {
    Command::new(common::SHOAL)
        .args(["put", path.to_str().unwrap(), "--name", name])
        .env("SHOAL_API", &peer.api)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_peer_recovers_by_itself_once_a_full_disk_has_room_again() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = small_disk(tmp.path(), "16m") else {
        return;
    };
    let small = disk.0.clone();
    let peer = Peer::start(&small.join("peer"), &[]);
    let content = random_bytes(1024 * 1024, 6);
    let local = tmp.path().join("content");
    std::fs::write(&local, &content).unwrap();
    for name in ["a", "b"] {
        peer.ok(&["put", local.to_str().unwrap(), "--name", name]);
    }

    // Something else fills the disk to the last block.
    let filler = small.join("filler");
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=64k",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    // Metadata-only writes now fail inside the database (or, if it still has
    // a free page, succeed); either way nothing is lost and nothing panics.
    for name in ["a", "b"] {
        let out = peer.cli(&["rm", name]);
        if !out.status.success() {
            assert_one_line_error(&out, "disk is full");
        }
    }
    std::fs::remove_file(&filler).unwrap();

    // With room again, the same peer works without a restart.
    let again = tmp.path().join("again");
    std::fs::write(&again, random_bytes(300_000, 7)).unwrap();
    peer.ok(&["put", again.to_str().unwrap(), "--name", "after"]);
    let names = peer.names();
    assert!(names.iter().any(|n| n == "after"), "{names:?}");
    let out = tmp.path().join("out");
    peer.ok(&["get", "after", "-o", out.to_str().unwrap()]);
    for name in names.iter().filter(|n| **n != "after") {
        peer.ok(&["get", name, "-o", out.to_str().unwrap()]);
        assert!(std::fs::read(&out).unwrap() == content, "{name} damaged");
    }
}
