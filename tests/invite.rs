//! Joining by invite, on real peers: the line `shoal invite` prints lets a
//! peer with no secret file join a secret swarm, the secret is then kept in
//! its data directory for restarts, and bad or conflicting invites are
//! refused with one clear line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{
    Peer, SHOAL, all_alive, assert_one_line_error, get_bytes, put_bytes, random_bytes, wait_until,
};
use tempfile::TempDir;

fn keygen(path: &Path) {
    let out = std::process::Command::new(SHOAL)
        .args(["keygen", "-o"])
        .arg(path)
        .output()
        .expect("run shoal keygen");
    assert!(out.status.success());
}

/// `shoal node` with `args` on `data`, expected to stop at once.
fn node_refused(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(SHOAL)
        .arg("node")
        .arg("--data")
        .arg(data)
        .args(["--api", "127.0.0.1:0", "--s3", "off", "--no-mdns"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(args)
        .env_remove("SHOAL_SECRET")
        .stdin(Stdio::null())
        .output()
        .expect("run shoal node")
}

#[test]
fn a_peer_joins_a_secret_swarm_by_invite_and_keeps_the_secret() {
    let dir = TempDir::new().unwrap();
    let secret_file = dir.path().join("secret");
    keygen(&secret_file);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let first = Peer::start(
        &dir.path().join("p0"),
        &["--secret-file", secret_file.to_str().unwrap()],
    );

    let invite = first.ok(&["invite"]);
    let invite = invite.trim();
    assert!(invite.starts_with("shoal-invite-1:"), "{invite}");
    assert!(invite.contains(secret.trim()));
    let json = first.json(&["invite", "--json"]);
    assert_eq!(json["invite"], invite);
    assert_eq!(
        json["addrs"][0].as_str().unwrap(),
        first.swarm_addr(),
        "the answering peer comes first"
    );
    assert!(json["secret_fingerprint"].as_str().is_some());

    let mut second = Peer::start(&dir.path().join("p1"), &["--invite", invite]);
    let ids = [first.peer_id(), second.peer_id()];
    wait_until(Duration::from_secs(30), "both list each other", || {
        all_alive(&[&first, &second], &ids)
    });
    let content = random_bytes(300_000, 4);
    put_bytes(&second, dir.path(), "by-invite", &content);
    assert!(get_bytes(&first, dir.path(), "by-invite") == content);

    // The secret is kept, for the owner only, and restarts need nothing.
    let kept = second.data.join("cluster.secret");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap().trim(),
        secret.trim()
    );
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    second.stop();
    second.restart_with(&[]);
    wait_until(
        Duration::from_secs(30),
        "the restarted peer is back",
        || all_alive(&[&first, &second], &ids),
    );

    // Several sources of the secret at once, or an invite to another swarm
    // into this data directory, are refused before anything starts.
    second.stop();
    let out = node_refused(
        &second.data,
        &[
            "--invite",
            invite,
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
    );
    assert_one_line_error(&out, "give the cluster secret once");
    let other_file = dir.path().join("other");
    keygen(&other_file);
    let other_secret = std::fs::read_to_string(&other_file).unwrap();
    let other_invite = invite.replace(secret.trim(), other_secret.trim());
    let out = node_refused(&second.data, &["--invite", &other_invite]);
    assert_one_line_error(&out, "keeps the secret of another swarm");
}

#[test]
fn damaged_invites_are_refused_with_one_line() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("p");
    for (invite, needle) in [
        ("hello", "not a shoal invite"),
        ("shoal-invite-1:open", "names no member"),
        (
            "shoal-invite-1:abc@/ip4/127.0.0.1/tcp/1",
            "secret is damaged",
        ),
        (
            "shoal-invite-1:open@/ip4/127.0.0.1/tcp/1",
            "must end in /p2p/",
        ),
    ] {
        let out = node_refused(&data, &["--invite", invite]);
        assert_one_line_error(&out, needle);
    }
    // `--invite -` reads the line from standard input.
    let mut child = std::process::Command::new(SHOAL)
        .arg("node")
        .arg("--data")
        .arg(&data)
        .args([
            "--api",
            "127.0.0.1:0",
            "--s3",
            "off",
            "--no-mdns",
            "--invite",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shoal node");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"shoal-invite-1:open\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_one_line_error(&out, "names no member");
    assert!(!data.join("cluster.secret").exists());
}
