//! LAN discovery: two peers in separate network namespaces, joined by a
//! bridge like two machines on one switch, find each other by mDNS with no
//! `--join`. Needs root and `ip`; skipped, saying why, where namespaces
//! cannot be created.

mod common;

use std::time::Duration;

use common::netns::Lan;
use common::{Peer, poll_until};
use tempfile::TempDir;

#[test]
fn peers_on_one_lan_find_each_other_without_join() {
    let lan = match Lan::new(2) {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("skipping LAN discovery test: network namespaces unavailable: {why}");
            return;
        }
    };
    let dir = TempDir::new().unwrap();
    let peers: Vec<Peer> = lan
        .namespaces()
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            Peer::start_in(
                Some(ns),
                &dir.path().join(format!("p{i}")),
                &["--listen", "/ip4/0.0.0.0/tcp/7071"],
            )
        })
        .collect();
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    let found = poll_until(Duration::from_secs(30), || {
        peers.iter().all(|p| {
            p.members().is_some_and(|members| {
                members.len() == 2
                    && ids
                        .iter()
                        .all(|id| members.iter().any(|(m, s)| m == id && s == "alive"))
            })
        })
    });
    assert!(
        found,
        "the peers did not find each other by mDNS:\n{}",
        peers
            .iter()
            .map(|p| format!("{:?}\n{}", p.members(), p.log_text()))
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    // The addresses they announce are the LAN ones, not loopback.
    let status = peers[0].status();
    let other = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["this_peer"] == false)
        .unwrap();
    let addrs = other["addrs"].to_string();
    assert!(addrs.contains("/ip4/10.77."), "{addrs}");
    assert!(!addrs.contains("127.0.0.1"), "{addrs}");
}
