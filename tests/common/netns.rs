//! Throwaway LANs of network namespaces, and faults on their links.
//!
//! A [`Lan`] is one namespace holding a bridge and one namespace per host,
//! each plugged into the bridge by a veth pair, like machines on one
//! switch: hosts get 10.77.0.1, 10.77.0.2, ... and their own loopback, so a
//! peer inside one can serve its API on 127.0.0.1 (open without a token)
//! while its swarm listens on the LAN address. Each LAN lives in its own
//! namespaces, so LANs of tests running at once never meet.
//!
//! Faults are `iptables` rules in a host's namespace, always on the
//! receiving side (`INPUT`): a dropped packet is lost on the wire, as in a
//! real partition, and senders find out only by timing out. (Dropping in
//! `OUTPUT` instead would hand the sender an immediate `EPERM`, which no
//! real network does.)
//!
//! Needs root, `ip` (iproute2) and, for faults, `iptables`. Everything is
//! named `shoal-t<pid>-<n>-...` and removed on drop, even when the test
//! panics; namespaces left by an earlier run that was killed (its process
//! is gone) are removed when the next LAN is built.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Peer, all_alive, wait_until};

/// What every namespace this module makes is called, up to the owner's pid.
const PREFIX: &str = "shoal-t";

/// The swarm port peers on a LAN listen on (each has its own address).
pub const SWARM_PORT: u16 = 7071;

/// A LAN of `hosts` network namespaces joined by a bridge. Removed on drop.
pub struct Lan {
    /// The namespace holding the bridge.
    bridge: String,
    /// Each host's namespace, in order.
    hosts: Vec<String>,
}

impl Lan {
    /// Builds a LAN of `hosts` hosts, or says why it cannot (not root, no
    /// `ip`, ...), so that the caller can skip.
    ///
    /// # Errors
    /// The first `ip` command that failed, and how.
    pub fn new(hosts: usize) -> Result<Lan, String> {
        assert!((1..=250).contains(&hosts), "1 to 250 hosts");
        remove_leftovers();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut lan = Lan {
            bridge: format!("{base}-br"),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &lan.bridge])?;
        in_ns(&lan.bridge, &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&lan.bridge, &["link", "set", "br0", "up"])?;
        for host in 1..=hosts {
            let ns = format!("{base}-h{host}");
            ip(&["netns", "add", &ns])?;
            lan.hosts.push(ns.clone());
            // Made inside the bridge's namespace with its other end sent
            // straight to the host's: nothing ever sits in the test's own
            // namespace, so nothing can be left there.
            let port = format!("h{host}");
            in_ns(
                &lan.bridge,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            in_ns(&lan.bridge, &["link", "set", &port, "master", "br0"])?;
            in_ns(&lan.bridge, &["link", "set", &port, "up"])?;
            let addr = format!("{}/24", host_addr(host - 1));
            in_ns(&ns, &["addr", "add", &addr, "dev", "eth0"])?;
            in_ns(&ns, &["link", "set", "eth0", "up"])?;
            in_ns(&ns, &["link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    /// Builds a LAN as [`Lan::new`] does and checks that `iptables` works
    /// in its namespaces, so that links can be cut.
    ///
    /// # Errors
    /// Why the LAN cannot be built, or why `iptables` cannot be used.
    pub fn with_firewall(hosts: usize) -> Result<Lan, String> {
        let lan = Lan::new(hosts)?;
        iptables(&lan.hosts[0], &["-L", "INPUT", "-n"])?;
        Ok(lan)
    }

    /// Host `i`'s namespace (hosts count from 0).
    pub fn ns(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// Every host's namespace, in order.
    pub fn namespaces(&self) -> &[String] {
        &self.hosts
    }

    /// Host `i`'s address on the LAN.
    pub fn addr(&self, i: usize) -> String {
        assert!(i < self.hosts.len(), "no host {i}");
        host_addr(i)
    }

    /// Host `i`'s swarm address (`/ip4/ADDR/tcp/7071`).
    pub fn swarm_addr(&self, i: usize) -> String {
        format!("/ip4/{}/tcp/{SWARM_PORT}", self.addr(i))
    }

    /// Cuts every link between `a` and `b` both ways: no packet from one
    /// group reaches the other.
    pub fn cut(&self, a: &[usize], b: &[usize]) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Drops every packet from a host of `from` to a host of `to`, and
    /// only those: `to` still reaches `from`, but hears nothing back.
    pub fn cut_one_way(&self, from: &[usize], to: &[usize]) {
        for &receiver in to {
            for &sender in from {
                let source = self.addr(sender);
                self.firewall(receiver, &["-A", "INPUT", "-s", &source, "-j", "DROP"]);
            }
        }
    }

    /// Drops each packet arriving at a host of `hosts` from the LAN with
    /// probability `probability` (0 to 1).
    pub fn lose(&self, hosts: &[usize], probability: f64) {
        assert!((0.0..=1.0).contains(&probability), "a probability");
        let probability = format!("{probability:.4}");
        for &host in hosts {
            self.firewall(
                host,
                &[
                    "-A",
                    "INPUT",
                    "-i",
                    "eth0",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                    "-j",
                    "DROP",
                ],
            );
        }
    }

    /// Lifts every cut and loss: each host's rules are flushed.
    pub fn heal(&self) {
        for host in 0..self.hosts.len() {
            self.firewall(host, &["-F", "INPUT"]);
        }
    }

    /// Runs `iptables args` in host `i`'s namespace; a failure is the
    /// test's (`with_firewall` checked that iptables works).
    fn firewall(&self, i: usize, args: &[&str]) {
        if let Err(e) = iptables(&self.hosts[i], args) {
            panic!("{e}");
        }
    }

    /// Starts one peer per host, data directories `dir/p0`, `dir/p1`, ...,
    /// each listening on its LAN address and the others joining through
    /// the first, with `extra` flags and no mDNS (members find each other
    /// by address alone, so a merge after a partition owes nothing to
    /// multicast). Waits until every peer lists every other alive.
    pub fn start_peers(&self, dir: &Path, extra: &[&str]) -> Vec<Peer> {
        let join = self.swarm_addr(0);
        let peers: Vec<Peer> = (0..self.hosts.len())
            .map(|i| {
                let listen = self.swarm_addr(i);
                let mut flags = vec!["--listen", listen.as_str(), "--no-mdns"];
                if i > 0 {
                    flags.extend(["--join", join.as_str()]);
                }
                flags.extend_from_slice(extra);
                Peer::start_in(Some(self.ns(i)), &dir.join(format!("p{i}")), &flags)
            })
            .collect();
        let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
        let all: Vec<&Peer> = peers.iter().collect();
        wait_until(
            Duration::from_secs(60),
            "every peer on the LAN lists every other alive",
            || all_alive(&all, &ids),
        );
        peers
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace also deletes the veth ends inside it.
        for ns in self.hosts.iter().rev().chain([&self.bridge]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The address of host `i` (from 0).
fn host_addr(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

/// Whether `curl` can be run, or why not (for tests to skip).
///
/// # Errors
/// Why curl cannot be run.
pub fn curl_available() -> Result<(), String> {
    run("curl", &["--version"])
}

/// Runs curl with `args` inside `ns` (so that `http://127.0.0.1:...` is
/// that namespace's loopback).
pub fn curl_in(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "curl"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl in a namespace")
}

/// Removes the namespaces of earlier runs whose process is gone (a run
/// killed before its `Lan`s dropped). Namespaces of running tests, this
/// one's included, are left alone.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `NAME` or `NAME (id: N)`.
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

fn iptables(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["netns", "exec", ns, "iptables", "-w"];
    full.extend_from_slice(args);
    ip(&full)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
