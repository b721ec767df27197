//! The swarm, end to end: real peers on loopback joining, detecting a
//! killed member, taking it back after a restart, and keeping out peers
//! with another cluster secret.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Peer, all_alive, assert_one_line_error, command_in, poll_until, wait_until};
use tempfile::TempDir;

/// How long a swarm of a few peers may take to converge on loopback.
const CONVERGE: Duration = Duration::from_secs(20);

/// The failure-detection bound the defaults promise.
const DETECTION_BOUND: Duration = Duration::from_secs(5);

fn write_secret(dir: &TempDir, name: &str) -> String {
    let path = dir.path().join(name);
    let out = std::process::Command::new(common::SHOAL)
        .args(["keygen", "-o"])
        .arg(&path)
        .output()
        .expect("run shoal keygen");
    assert!(out.status.success(), "keygen failed: {out:?}");
    path.to_str().expect("UTF-8 path").to_owned()
}

#[test]
fn five_peers_join_detect_a_kill_and_take_the_peer_back_after_a_restart() {
    let dir = TempDir::new().unwrap();
    let first = Peer::start(&dir.path().join("p0"), &[]);
    let join = first.swarm_addr();
    let mut peers = vec![first];
    for i in 1..5 {
        peers.push(Peer::start(
            &dir.path().join(format!("p{i}")),
            &["--join", &join],
        ));
    }
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    let all: Vec<&Peer> = peers.iter().collect();
    wait_until(CONVERGE, "all five peers list five alive members", || {
        all_alive(&all, &ids)
    });

    // SIGKILL one: every survivor must call it dead within the bound.
    let victim = 2;
    let victim_id = ids[victim].clone();
    peers[victim].kill9();
    let killed = Instant::now();
    let survivors: Vec<&Peer> = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, p)| p)
        .collect();
    wait_until(
        DETECTION_BOUND * 2,
        "every survivor marks the killed peer dead",
        || {
            survivors
                .iter()
                .all(|p| p.state_of(&victim_id).as_deref() == Some("dead"))
        },
    );
    let detected = killed.elapsed();
    assert!(
        detected <= DETECTION_BOUND,
        "the killed peer was declared dead everywhere after {detected:?}, over the {DETECTION_BOUND:?} bound"
    );

    // Restarted on its data directory without --join, it rejoins through
    // the members it remembers and is alive everywhere under the same id.
    peers[victim].restart_with(&[]);
    assert_eq!(peers[victim].peer_id(), victim_id);
    let all: Vec<&Peer> = peers.iter().collect();
    if !poll_until(CONVERGE, || all_alive(&all, &ids)) {
        panic!(
            "the restarted peer is not alive everywhere after {CONVERGE:?}\n--- restarted peer ---\n{}\n--- first peer ---\n{}",
            peers[victim].log_text(),
            peers[0].log_text()
        );
    }
}

#[test]
fn joining_by_an_address_without_a_peer_id_works() {
    let dir = TempDir::new().unwrap();
    let first = Peer::start(&dir.path().join("a"), &[]);
    let full = first.swarm_addr();
    let bare = full.split("/p2p/").next().unwrap().to_owned();
    assert_ne!(bare, full);
    let second = Peer::start(&dir.path().join("b"), &["--join", &bare]);
    let ids = [first.peer_id(), second.peer_id()];
    wait_until(CONVERGE, "both peers list each other alive", || {
        all_alive(&[&first, &second], &ids)
    });
}

#[test]
fn a_peer_with_another_secret_is_never_admitted() {
    let dir = TempDir::new().unwrap();
    let ours = write_secret(&dir, "ours.key");
    let theirs = write_secret(&dir, "theirs.key");
    let a = Peer::start(&dir.path().join("a"), &["--secret-file", &ours]);
    let join = a.swarm_addr();
    let b = Peer::start(
        &dir.path().join("b"),
        &["--secret-file", &ours, "--join", &join],
    );
    let ids = [a.peer_id(), b.peer_id()];
    wait_until(
        CONVERGE,
        "the two peers sharing a secret see each other",
        || all_alive(&[&a, &b], &ids),
    );

    // Another secret, and no secret at all: the join is refused with a
    // one-line error naming the likely cause.
    for (name, secret) in [("c", Some(theirs.as_str())), ("d", None)] {
        let mut command = command_in(None);
        command
            .arg("node")
            .arg("--data")
            .arg(dir.path().join(name))
            .args(["--api", "127.0.0.1:0", "--s3", "off"])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--no-mdns", "--join", &join])
            .env("SHOAL_LOG", "error")
            .stdin(Stdio::null());
        if let Some(secret) = secret {
            command.args(["--secret-file", secret]);
        }
        let out = command.output().expect("run shoal node");
        assert_one_line_error(&out, "wrong or missing cluster secret");
    }

    // An outsider that is dialled, rather than dialling, is refused too.
    let outsider = Peer::start(&dir.path().join("e"), &["--secret-file", &theirs]);
    let out = command_in(None)
        .arg("node")
        .arg("--data")
        .arg(dir.path().join("f"))
        .args(["--api", "127.0.0.1:0", "--s3", "off"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--no-mdns", "--secret-file", &ours, "--join"])
        .arg(outsider.swarm_addr())
        .env("SHOAL_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run shoal node");
    assert_one_line_error(&out, "wrong or missing cluster secret");
    assert!(
        outsider.log_text().contains("refused a connection"),
        "the outsider logs why it dropped the connection:\n{}",
        outsider.log_text()
    );
    let outsider_id = outsider.peer_id();
    for peer in [&a, &b] {
        let members = peer.members().expect("peer answers");
        assert_eq!(members.len(), 2, "{members:?}");
        assert!(members.iter().all(|(id, _)| *id != outsider_id));
    }
    assert_eq!(outsider.members().expect("outsider answers").len(), 1);
}

#[test]
fn a_port_in_use_and_an_unreachable_join_are_one_line_errors() {
    let dir = TempDir::new().unwrap();
    let a = Peer::start(&dir.path().join("a"), &[]);
    let taken = a.swarm_addr().split("/p2p/").next().unwrap().to_owned();
    let run = |data: &str, args: &[&str]| {
        command_in(None)
            .arg("node")
            .arg("--data")
            .arg(dir.path().join(data))
            .args(["--api", "127.0.0.1:0", "--s3", "off", "--no-mdns"])
            .args(args)
            .env("SHOAL_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .expect("run shoal node")
    };
    assert_one_line_error(&run("b", &["--listen", &taken]), "address already in use");

    let closed = format!("/ip4/127.0.0.1/tcp/{}", common::closed_port());
    assert_one_line_error(
        &run(
            "c",
            &["--listen", "/ip4/127.0.0.1/tcp/0", "--join", &closed],
        ),
        "connection refused",
    );
    assert_one_line_error(
        &run("d", &["--join", "/ip4/127.0.0.1/udp/7071"]),
        "shoal peers speak TCP",
    );
    assert_one_line_error(&run("e", &["--join", "not-an-address"]), "--join");
}

#[test]
fn garbage_on_the_swarm_port_is_dropped_without_harm() {
    let dir = TempDir::new().unwrap();
    let a = Peer::start(&dir.path().join("a"), &[]);
    let addr = a.swarm_addr();
    let port: u16 = addr
        .split("/tcp/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a TCP port in the listen address");
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        common::random_bytes(64 * 1024, 7),
        b"\x13/multistream/1.0.0\n\x07/noise\n\xff\xff\xff\xff".to_vec(),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _ = stream.write_all(&garbage);
        drop(stream);
    }
    // Still serving, and still joinable.
    let b = Peer::start(&dir.path().join("b"), &["--join", &addr]);
    let ids = [a.peer_id(), b.peer_id()];
    wait_until(CONVERGE, "a peer can still join", || {
        all_alive(&[&a, &b], &ids)
    });
}
