//! Managing S3 access keys through the CLI: the cases that need no S3
//! client (those are in `tests/s3`, run by `s3_clients.rs`).

mod common;

use std::process::Output;

use common::{Peer, assert_one_line_error};

/// One peer keeping one copy: enough for records.
const ALONE: [&str; 6] = [
    "--replicas",
    "1",
    "--write-quorum",
    "1",
    "--read-quorum",
    "1",
];

/// `shoal s3 key import ID SECRET --name NAME` against `peer`.
fn import(peer: &Peer, id: &str, secret: &str) -> Output {
    peer.cli(&["s3", "key", "import", id, secret, "--name", "imported"])
}

/// A swarm without a cluster secret cannot keep key secrets from anyone
/// who joins it, so it refuses to make keys, saying what to do.
#[test]
fn keys_need_a_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(&dir.path().join("open"), &ALONE);
    assert_one_line_error(
        &peer.cli(&["s3", "key", "create", "backup"]),
        "--secret-file",
    );
    assert_one_line_error(
        &import(&peer, "AKIAEXAMPLEKEY01", "secret-secret"),
        "cluster secret",
    );
    assert_eq!(peer.ok(&["s3", "key", "ls"]), "", "no key was made");
}

/// Keys are made, listed without their secrets, imported and removed; bad
/// ids and secrets are refused with one line each.
#[test]
fn keys_are_listed_without_secrets_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("cluster.key");
    let made = std::process::Command::new(common::SHOAL)
        .args(["keygen", "-o"])
        .arg(&secret_file)
        .status()
        .unwrap();
    assert!(made.success());
    let mut flags = ALONE.to_vec();
    flags.extend(["--secret-file", secret_file.to_str().unwrap()]);
    let peer = Peer::start(&dir.path().join("peer"), &flags);

    let key = peer.json(&["s3", "key", "create", "backup", "--json"]);
    let id = key["access_key_id"].as_str().unwrap();
    let secret = key["secret_access_key"].as_str().unwrap();
    assert_eq!(key["name"], "backup");
    assert_eq!(secret.len(), 40);
    assert!(
        import(&peer, "AKIAIMPORTED00001", "imported/secret+key")
            .status
            .success()
    );

    let listed = peer.ok(&["s3", "key", "ls", "--json"]);
    assert!(listed.contains(id) && listed.contains("AKIAIMPORTED00001"));
    assert!(!listed.contains(secret) && !listed.contains("imported/secret+key"));
    assert!(
        !peer.log_text().contains(secret),
        "a secret reached the log"
    );

    let again = import(&peer, "AKIAIMPORTED00001", "another-secret");
    assert_one_line_error(&again, "already exists");
    let bad_id = import(&peer, "bad/id", "secret-secret");
    assert_one_line_error(&bad_id, "invalid access key id");
    assert_one_line_error(&import(&peer, "AKIAOK000000001", "short"), "invalid secret");

    peer.ok(&["s3", "key", "rm", id]);
    assert!(!peer.ok(&["s3", "key", "ls"]).contains(id));
    assert_one_line_error(&peer.cli(&["s3", "key", "rm", id]), "no such access key");
}
