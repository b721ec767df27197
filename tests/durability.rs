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
        let child = Command::new(common::SHOAL)
            .args(["put", path.to_str().unwrap(), "--name", &format!("f{i}")])
            .env("SHOAL_API", &peer.api)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
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
    let listed = peer.json(&["ls", "--json"]);
    for entry in listed.as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
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

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
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
        .is_ok_and(|s| s.success())
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_upload_cleanly_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small-disk");
    if !mount_tmpfs(&small, "24m") {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let _unmount = Unmount(small.clone());
    let peer = Peer::start(&small.join("peer"), &[]);
    let early = random_bytes(2 * 1024 * 1024, 3);
    let early_path = tmp.path().join("early");
    std::fs::write(&early_path, &early).unwrap();
    peer.ok(&["put", early_path.to_str().unwrap(), "--name", "early"]);

    let big = tmp.path().join("big");
    std::fs::write(&big, random_bytes(40 * 1024 * 1024, 4)).unwrap();
    assert_one_line_error(&peer.cli(&["put", big.to_str().unwrap()]), "disk is full");

    let names = peer.json(&["ls", "--json"]);
    assert_eq!(names.as_array().unwrap().len(), 1, "{names}");
    let out = tmp.path().join("out");
    peer.ok(&["get", "early", "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == early);

    // The space the failed upload took is given back, so smaller writes work.
    let later = tmp.path().join("later");
    std::fs::write(&later, random_bytes(1024 * 1024, 5)).unwrap();
    peer.ok(&["put", later.to_str().unwrap()]);
}
