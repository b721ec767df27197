//! Bad input gets one clear error line, a non-zero exit, and loses nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Peer, assert_one_line_error, cli, closed_port, random_bytes};

#[test]
fn local_file_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let missing = tmp.path().join("missing.bin");
    assert_one_line_error(
        &peer.cli(&["put", missing.to_str().unwrap()]),
        "no such file",
    );
    assert_one_line_error(
        &peer.cli(&["put", tmp.path().to_str().unwrap()]),
        "is a directory",
    );
    let below_a_file = tmp.path().join("peer.log/x");
    assert_one_line_error(
        &peer.cli(&["put", below_a_file.to_str().unwrap()]),
        "not a directory",
    );
    assert_one_line_error(&peer.cli(&["put", "-"]), "--name");
    assert_eq!(peer.json(&["status", "--json"])["store"]["files"], 0);
}

#[test]
fn invalid_and_unknown_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let local = tmp.path().join("f");
    std::fs::write(&local, b"data").unwrap();
    let local = local.to_str().unwrap();
    assert_one_line_error(&peer.cli(&["put", local, "--name", ""]), "empty");
    assert_one_line_error(
        &peer.cli(&["put", local, "--name", "tab\there"]),
        "control character",
    );
    assert_one_line_error(
        &peer.cli(&["put", local, "--name", "line\nbreak"]),
        "control character",
    );
    let long = "x".repeat(1089);
    assert_one_line_error(&peer.cli(&["put", local, "--name", &long]), "1088");
    assert_one_line_error(
        &peer.cli(&["get", "unknown", "-o", "/dev/null"]),
        "no such file: unknown",
    );
    assert_one_line_error(&peer.cli(&["rm", "unknown"]), "no such file");
    assert_one_line_error(&peer.cli(&["stat", "unknown"]), "no such file");
    assert_one_line_error(&peer.cli(&["get", "bell\u{7}"]), "control character");
    assert_one_line_error(&peer.cli(&["get", "dir/"]), "-o");
    assert_one_line_error(&peer.cli(&["frobnicate"]), "unrecognized subcommand");
    assert_one_line_error(&peer.cli(&["ls", &"p".repeat(70_000)]), "at most 1088");
    assert_one_line_error(&peer.cli(&["put"]), "required");
    assert_eq!(peer.json(&["status", "--json"])["store"]["files"], 0);
}

#[test]
fn a_peer_that_is_not_running_is_reported() {
    let api = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        &["status"][..],
        &["ls"],
        &["get", "x", "-o", "/dev/null"],
        &["rm", "x"],
        &["stat", "x"],
        &["put", "/etc/hostname"],
    ] {
        assert_one_line_error(&cli(&api, args), "is it running");
    }
    assert_one_line_error(&cli("not a url", &["status"]), "invalid API URL");
}

#[test]
fn node_start_up_problems_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let port = peer.api.rsplit(':').next().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::SHOAL)
            .arg("node")
            .args(["--s3", "off"])
            .args(args)
            .output()
            .unwrap()
    };
    let other = tmp.path().join("other");
    let other = other.to_str().unwrap();
    assert_one_line_error(
        &run(&["--data", other, "--api", &format!("127.0.0.1:{port}")]),
        "address already in use",
    );
    let same = peer.data.to_str().unwrap();
    assert_one_line_error(
        &run(&["--data", same, "--api", "127.0.0.1:0"]),
        "in use by another shoal process",
    );
    assert_one_line_error(
        &run(&["--data", other, "--chunk-size", "10"]),
        "--chunk-size",
    );
    assert_one_line_error(&run(&["--data", other, "--api", "nonsense"]), "--api");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert_one_line_error(
        &run(&["--data", file.join("sub").to_str().unwrap()]),
        "not a directory",
    );
    // The running peer is unaffected.
    peer.ok(&["status"]);
}

#[test]
fn an_upload_cut_off_midway_leaves_nothing_and_keeps_earlier_files() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let earlier = random_bytes(1_500_000, 1);
    let local = tmp.path().join("earlier");
    std::fs::write(&local, &earlier).unwrap();
    peer.ok(&["put", local.to_str().unwrap(), "--name", "keep"]);

    let addr = peer.api.trim_start_matches("http://");
    for name in ["keep", "partial"] {
        // Declare 5 MiB, send 2 MiB, hang up.
        let mut conn = TcpStream::connect(addr).unwrap();
        let head = format!(
            "PUT /v1/files/{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
            5 * 1024 * 1024
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&random_bytes(2 * 1024 * 1024, 2)).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(
            !answer.contains("201 Created"),
            "a cut-off upload was acknowledged: {answer}"
        );
    }
    let names = peer.names();
    assert_eq!(names, ["keep"]);
    let out = tmp.path().join("out");
    peer.ok(&["get", "keep", "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == earlier);
}

#[test]
fn a_failed_get_leaves_the_destination_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let content = random_bytes(3 * 1024 * 1024, 5);
    let local = tmp.path().join("content");
    std::fs::write(&local, &content).unwrap();
    peer.ok(&["put", local.to_str().unwrap(), "--name", "victim"]);

    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("dest");
    std::fs::write(&dest, b"precious").unwrap();

    assert_one_line_error(
        &peer.cli(&["get", "absent", "-o", dest.to_str().unwrap()]),
        "no such file",
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");

    // Damage the second chunk on the peer's disk: the peer must detect it
    // and the download must fail without touching the destination.
    let segment = peer.data.join("segments/00000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[1024 * 1024 + 4242] ^= 0x5a;
    std::fs::write(&segment, bytes).unwrap();
    assert_one_line_error(
        &peer.cli(&["get", "victim", "-o", dest.to_str().unwrap()]),
        "victim",
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    // What verified before the damage is kept beside the destination, for
    // the next `get` to resume from.
    let mut leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    leftovers.sort();
    assert_eq!(leftovers, [".dest.shoal-partial", "dest"]);
    // (How much arrived before the peer cut the response off varies.)
    let partial = std::fs::read(out_dir.join(".dest.shoal-partial")).unwrap();
    assert!(
        partial.len().is_multiple_of(1024 * 1024) && partial[..] == content[..partial.len()],
        "only whole, intact chunks from the start are kept"
    );
    assert!(
        peer.log_text().contains("does not match its hash"),
        "corruption must be logged"
    );
}

/// An upload refused before its body is read must not leave the body on a
/// kept-alive connection, where a client that gave up waiting for
/// `100 Continue` and sent it anyway would have it read as the start of
/// its next request: the refusal closes the connection.
#[test]
fn a_refused_upload_closes_its_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let addr = peer.api.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A name with a control character is refused before the body is read.
    let head = format!(
        "PUT /v1/files/bad%01name HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 400"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}
