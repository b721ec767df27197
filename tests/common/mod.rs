//! Test harness: real `shoal` processes on loopback, or on a LAN of network
//! namespaces ([`netns`]).
//!
//! A peer is started with `--api 127.0.0.1:0` and its actual address is read
//! from the readiness line it prints, so tests never race for ports. Waiting
//! is always polling against a deadline.

#![allow(dead_code)]

pub mod history;
pub mod lan_swarm;
pub mod netns;
pub mod python;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `shoal` binary under test.
pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// The listen address a test peer gets unless told otherwise.
const ANY_LOOPBACK_PORT: &str = "/ip4/127.0.0.1/tcp/0";

/// How long a peer may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `shoal node`.
pub struct Peer {
    child: Option<Child>,
    /// The peer's data directory.
    pub data: PathBuf,
    /// Its API URL.
    pub api: String,
    /// Where its log goes.
    pub log: PathBuf,
    extra: Vec<String>,
    /// The network namespace it runs in, if not the test's own.
    netns: Option<String>,
    /// The swarm address it was given when asked for any free port, kept
    /// so that a restart listens where the other peers remember it, as a
    /// peer with a configured port would.
    bound_listen: Option<String>,
}

impl Peer {
    /// Starts a peer on `data` with extra node flags.
    ///
    /// Unless `extra` says otherwise, the peer listens for other peers on a
    /// free loopback port and does not use mDNS, so tests running at once
    /// never find each other.
    pub fn start(data: &Path, extra: &[&str]) -> Peer {
        Peer::start_in(None, data, extra)
    }

    /// Starts a peer inside network namespace `netns` (if given) as
    /// `start` does, except that mDNS stays on unless `extra` turns it off.
    pub fn start_in(netns: Option<&str>, data: &Path, extra: &[&str]) -> Peer {
        let extra = node_flags(netns, extra);
        let log = data.with_extension("log");
        let netns = netns.map(str::to_owned);
        let (child, api) = spawn(netns.as_deref(), data, &extra, &log);
        let mut peer = Peer {
            child: Some(child),
            data: data.to_owned(),
            api,
            log,
            extra,
            netns,
            bound_listen: None,
        };
        if peer.extra.iter().any(|f| f == ANY_LOOPBACK_PORT) {
            let addr = peer.swarm_addr();
            peer.bound_listen = addr.split("/p2p/").next().map(str::to_owned);
        }
        peer
    }

    /// Runs the CLI against this peer as a user of its machine would:
    /// with `SHOAL_DATA` naming its data directory, so that a peer that
    /// needs tokens is reached with its own, and for a peer serving HTTPS,
    /// `SHOAL_CA` naming its certificate.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = command_in(self.netns.as_deref());
        command
            .args(args)
            .env("SHOAL_API", &self.api)
            .env("SHOAL_DATA", &self.data)
            .env_remove("SHOAL_LOG")
            .env_remove("SHOAL_TOKEN")
            .env_remove("SHOAL_CA")
            .stdin(Stdio::null());
        let cert = self.extra.iter().position(|f| f == "--tls-cert");
        if let Some(cert) = cert.and_then(|i| self.extra.get(i + 1)) {
            command.env("SHOAL_CA", cert);
        }
        command.output().expect("run shoal CLI")
    }

    /// The peer's status (`shoal status --json`).
    pub fn status(&self) -> serde_json::Value {
        self.json(&["status", "--json"])
    }

    /// The peer's id.
    pub fn peer_id(&self) -> String {
        self.status()["peer_id"]
            .as_str()
            .expect("status has a peer id")
            .to_owned()
    }

    /// The address other peers join it by, with its `/p2p/` suffix.
    pub fn swarm_addr(&self) -> String {
        let status = self.status();
        status["listen"][0]
            .as_str()
            .unwrap_or_else(|| panic!("the peer listens somewhere: {status}"))
            .to_owned()
    }

    /// Every member this peer lists (itself included), as (peer id, state),
    /// or `None` if the peer does not answer.
    pub fn members(&self) -> Option<Vec<(String, String)>> {
        let out = self.cli(&["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(
            status["members"]
                .as_array()?
                .iter()
                .map(|m| {
                    (
                        m["peer_id"].as_str().unwrap_or_default().to_owned(),
                        m["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        )
    }

    /// The state this peer holds `peer_id` in, if it lists it.
    pub fn state_of(&self, peer_id: &str) -> Option<String> {
        self.members()?
            .into_iter()
            .find(|(id, _)| id == peer_id)
            .map(|(_, state)| state)
    }

    /// Runs the CLI and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "shoal {args:?} failed: {}\n--- peer log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8(out.stdout).expect("CLI output is UTF-8")
    }

    /// Runs the CLI with `--json` output parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("--json output is JSON")
    }

    /// The names `shoal ls --json` lists, in its order.
    pub fn names(&self) -> Vec<String> {
        self.json(&["ls", "--json"])
            .as_array()
            .expect("ls --json prints an array")
            .iter()
            .map(|f| {
                f["name"]
                    .as_str()
                    .expect("every entry has a name")
                    .to_owned()
            })
            .collect()
    }

    /// The peer's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("peer is running").id()
    }

    /// SIGKILLs the peer and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (with a deadline) for the peer to exit by itself, cleanly.
    pub fn wait_for_exit(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait on peer") {
                assert!(
                    status.success(),
                    "peer exited with {status}\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "peer did not exit\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERMs the peer and waits (with a deadline) for a clean exit.
    pub fn stop(&mut self) {
        let Some(child) = &self.child else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        self.wait_for_exit(Duration::from_secs(20));
    }

    /// Starts the peer again on the same data directory and flags (and on
    /// the same swarm port, if it was given a free one).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the peer first");
        let flags: Vec<String> = self
            .extra
            .iter()
            .map(|f| match &self.bound_listen {
                Some(bound) if f == ANY_LOOPBACK_PORT => bound.clone(),
                _ => f.clone(),
            })
            .collect();
        let (child, api) = spawn(self.netns.as_deref(), &self.data, &flags, &self.log);
        self.child = Some(child);
        self.api = api;
    }

    /// Starts the peer again on the same data directory with new flags.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = node_flags(self.netns.as_deref(), extra);
        self.restart();
    }
}

/// `extra` plus the defaults `Peer::start_in` documents.
fn node_flags(netns: Option<&str>, extra: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    if !flags.iter().any(|a| a == "--listen") {
        flags.extend(["--listen".into(), ANY_LOOPBACK_PORT.into()]);
    }
    if !flags.iter().any(|a| a == "--s3") {
        flags.extend(["--s3".into(), "127.0.0.1:0".into()]);
    }
    if netns.is_none() && !flags.iter().any(|a| a == "--no-mdns") {
        flags.push("--no-mdns".into());
    }
    flags
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(netns: Option<&str>, data: &Path, extra: &[String], log: &Path) -> (Child, String) {
    let log_file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("create peer log");
    let mut child = command_in(netns);
    child
        .arg("node")
        .arg("--data")
        .arg(data)
        .args(["--api", "127.0.0.1:0"])
        .args(extra)
        .env("SHOAL_LOG", "info,shoal=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    let mut child = child.spawn().expect("spawn shoal node");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.split("serving the API on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(url.to_owned());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(api) => (child, api),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "peer did not announce its API within {START_TIMEOUT:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A command running `shoal`, inside network namespace `netns` if given.
pub fn command_in(netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns, SHOAL]);
            command
        }
        None => Command::new(SHOAL),
    }
}

/// Runs the CLI against the API at `api`.
pub fn cli(api: &str, args: &[&str]) -> Output {
    cli_in(None, api, args)
}

/// Runs the CLI against the API at `api` from inside `netns`.
pub fn cli_in(netns: Option<&str>, api: &str, args: &[&str]) -> Output {
    command_in(netns)
        .args(args)
        .env("SHOAL_API", api)
        .env_remove("SHOAL_LOG")
        .env_remove("SHOAL_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run shoal CLI")
}

/// Asserts the command failed with exactly one `error: ...` line on stderr
/// that mentions `needle`, and printed nothing on stdout.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{stderr}");
    assert!(
        lines[0].starts_with("error: "),
        "not an error line: {stderr}"
    );
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "error {:?} does not mention {needle:?}",
        lines[0]
    );
    assert!(
        out.stdout.is_empty(),
        "stdout not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Polls `check` until it returns true or `timeout` passes.
/// Polls `check` until it holds or `timeout` passes; says which.
pub fn poll_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` until it holds, failing the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Puts `content` as `name` through `peer`, from a file written in `dir`.
pub fn put_bytes(peer: &Peer, dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(format!("upload-{}", name.replace('/', "_")));
    std::fs::write(&path, content).unwrap();
    peer.ok(&["put", path.to_str().unwrap(), "--name", name]);
}

/// Gets `name` through `peer` into a file in `dir` and returns its bytes.
pub fn get_bytes(peer: &Peer, dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(format!("download-{}", name.replace('/', "_")));
    let _ = std::fs::remove_file(&path);
    peer.ok(&["get", name, "-o", path.to_str().unwrap()]);
    std::fs::read(&path).unwrap()
}

/// How many chunks `peer`'s store holds.
pub fn stored_chunks(peer: &Peer) -> u64 {
    peer.status()["store"]["chunks"].as_u64().unwrap()
}

/// Whether every peer in `peers` lists exactly `ids`, all alive.
pub fn all_alive(peers: &[&Peer], ids: &[String]) -> bool {
    peers.iter().all(|p| {
        p.members().is_some_and(|members| {
            members.len() == ids.len()
                && ids
                    .iter()
                    .all(|id| members.iter().any(|(m, s)| m == id && s == "alive"))
        })
    })
}

/// Starts `n` peers in `dir` (`p0`, `p1`, ...), the others joining through
/// the first, with `extra` flags on each, and waits until every one lists
/// all of them alive.
pub fn start_swarm(dir: &Path, n: usize, extra: &[&str]) -> Vec<Peer> {
    let first = Peer::start(&dir.join("p0"), extra);
    let join = first.swarm_addr();
    let mut peers = vec![first];
    for i in 1..n {
        let mut flags = extra.to_vec();
        flags.extend(["--join", join.as_str()]);
        peers.push(Peer::start(&dir.join(format!("p{i}")), &flags));
    }
    let ids: Vec<String> = peers.iter().map(Peer::peer_id).collect();
    let all: Vec<&Peer> = peers.iter().collect();
    wait_until(
        Duration::from_secs(30),
        "every peer lists every other alive",
        || all_alive(&all, &ids),
    );
    peers
}

/// A port on loopback that nothing listens on (bound then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Flags for swarms whose tests wait on healing: small chunks, and repair
/// that starts two seconds after a death and looks every second.
pub const QUICK_HEALING: [&str; 6] = [
    "--chunk-size",
    "65536",
    "--rereplicate-after",
    "2s",
    "--repair-interval",
    "1s",
];

/// An HTTP request with curl (`args` are curl's): the status code and the
/// body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("a status line");
    (code.parse().expect("a status code"), body.to_owned())
}
