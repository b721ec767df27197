//! LAN discovery: two peers in separate network namespaces, joined by a
//! bridge like two machines on one switch, find each other by mDNS with no
//! `--join`. Needs root and `ip`; skipped, saying why, where namespaces
//! cannot be created.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Peer, poll_until};
use tempfile::TempDir;

/// A throwaway LAN: one namespace holding a bridge, and one namespace per
/// host plugged into it. Removed on drop.
struct Lan {
    namespaces: Vec<String>,
}

impl Lan {
    /// Creates a LAN with `hosts` hosts at 10.77.N.1, 10.77.N.2, ...; returns
    /// each host's namespace, or why it could not be built.
    fn new(hosts: usize) -> Result<(Lan, Vec<String>), String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let subnet = (std::process::id() % 200) + 20;
        let bridge_ns = format!("shoal-br-{tag}");
        let mut lan = Lan {
            namespaces: Vec::new(),
        };
        ip(&["netns", "add", &bridge_ns])?;
        lan.namespaces.push(bridge_ns.clone());
        in_ns(&bridge_ns, &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&bridge_ns, &["link", "set", "br0", "up"])?;
        let mut hosts_ns = Vec::new();
        for host in 1..=hosts {
            let ns = format!("shoal-h{host}-{tag}");
            ip(&["netns", "add", &ns])?;
            lan.namespaces.push(ns.clone());
            let (inner, outer) = (format!("sh{host}i{tag}"), format!("sh{host}o{tag}"));
            let (inner, outer) = (truncate(&inner), truncate(&outer));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "netns", &bridge_ns])?;
            in_ns(&bridge_ns, &["link", "set", &outer, "master", "br0"])?;
            in_ns(&bridge_ns, &["link", "set", &outer, "up"])?;
            let addr = format!("10.77.{subnet}.{host}/24");
            in_ns(&ns, &["addr", "add", &addr, "dev", &inner])?;
            in_ns(&ns, &["link", "set", &inner, "up"])?;
            in_ns(&ns, &["link", "set", "lo", "up"])?;
            hosts_ns.push(ns);
        }
        Ok((lan, hosts_ns))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Interface names are limited to 15 bytes.
fn truncate(name: &str) -> String {
    name.chars().take(15).collect()
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

#[test]
fn peers_on_one_lan_find_each_other_without_join() {
    let (_lan, hosts) = match Lan::new(2) {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("skipping LAN discovery test: network namespaces unavailable: {why}");
            return;
        }
    };
    let dir = TempDir::new().unwrap();
    let peers: Vec<Peer> = hosts
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
