//! A swarm of one peer per host of a [`Lan`], driven over its HTTP API
//! from inside each host's namespace (each peer's API listens on its own
//! loopback, open without a token), with the questions tests on a LAN ask:
//! puts and deletes with their versions, reads, copy counts, copies held
//! for others, and who sees whom.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use super::history::{Outcome, Read};
use super::netns::{Lan, curl_in};
use super::{Peer, all_alive, poll_until};

/// One peer per host of a [`Lan`], reached over HTTP with curl inside
/// each host's namespace. Fields drop in order: peers are killed before
/// their namespaces and data directories go. A test that fails keeps the
/// data directories and logs, and says where.
pub struct LanSwarm {
    /// What the test calls this swarm, for messages.
    pub label: &'static str,
    /// The peers, by host.
    pub peers: Vec<Peer>,
    /// Each peer's id, by host.
    pub ids: Vec<String>,
    /// The LAN they are on.
    pub lan: Lan,
    dir: Option<TempDir>,
}

impl Drop for LanSwarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for peer in &mut self.peers {
                peer.kill9();
            }
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "{}: kept the peers' data and logs in {}",
                    self.label,
                    dir.keep().display()
                );
            }
        }
    }
}

/// What an HTTP request answered: the status (0 if none), the
/// `x-shoal-version` header and the body.
pub type Answer = (u16, Option<String>, Vec<u8>);

impl LanSwarm {
    /// Starts a peer on every host of `lan` with `flags` (see
    /// [`Lan::start_peers`]) and waits until each lists every other alive.
    pub fn start(label: &'static str, lan: Lan, flags: &[&str]) -> LanSwarm {
        let dir = TempDir::new().unwrap();
        let peers = lan.start_peers(dir.path(), flags);
        let ids = peers.iter().map(Peer::peer_id).collect();
        LanSwarm {
            label,
            peers,
            ids,
            lan,
            dir: Some(dir),
        }
    }

    /// Where the peers' data directories and logs are, and the test's
    /// scratch files.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("kept until dropped").path()
    }

    /// The host whose peer has id `peer`.
    pub fn host_of(&self, peer: &str) -> usize {
        self.ids
            .iter()
            .position(|id| id == peer)
            .expect("a member of the swarm")
    }

    /// Writes `content` as `name` through host `host`.
    pub fn put(&self, host: usize, name: &str, content: &[u8]) -> Outcome {
        let body = self.dir().join(format!("put-{name}-{host}"));
        std::fs::write(&body, content).unwrap();
        let upload = format!("@{}", body.display());
        let args = ["-X", "PUT", "--data-binary", upload.as_str()];
        match self.http_one(host, &args, format!("v1/files/{name}")) {
            (201, Some(version), _) => Outcome::Acked(version),
            (status, _, body) => Outcome::Unknown(status, String::from_utf8_lossy(&body).into()),
        }
    }

    /// Deletes `name` through host `host`.
    pub fn delete(&self, host: usize, name: &str) -> Outcome {
        match self.http_one(host, &["-X", "DELETE"], format!("v1/files/{name}")) {
            (204, Some(version), _) => Outcome::Acked(version),
            (status, _, body) => Outcome::Unknown(status, String::from_utf8_lossy(&body).into()),
        }
    }

    /// Gets each of `names` through host `host`.
    pub fn get_all<'a>(
        &self,
        host: usize,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Vec<Read> {
        let paths: Vec<String> = names.into_iter().map(|n| format!("v1/files/{n}")).collect();
        let read = |answer: Answer| match answer {
            (200, Some(version), body) => Read::Live(version, body),
            (404, _, _) => Read::Gone,
            (status, _, body) => Read::Failed(status, String::from_utf8_lossy(&body).into()),
        };
        self.http(host, &[], &paths).into_iter().map(read).collect()
    }

    /// For each of `names`, as host `host` sees it: the peers holding its
    /// manifest and each of its chunks (`None` if the peer cannot say).
    pub fn copies<'a>(
        &self,
        host: usize,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Vec<Option<Copies>> {
        let paths: Vec<String> = names
            .into_iter()
            .map(|n| format!("v1/manifest?name={n}"))
            .collect();
        let list = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|p| p.as_str().map(str::to_owned))
                .collect()
        };
        let copies = |(status, _, body): Answer| {
            if status != 200 {
                return None;
            }
            let stat: serde_json::Value = serde_json::from_slice(&body).ok()?;
            let chunks = stat["chunks"].as_array()?.iter();
            Some(Copies {
                manifest: list(&stat["manifest_replicas"])?,
                chunks: chunks
                    .map(|c| list(&c["replicas"]))
                    .collect::<Option<_>>()?,
            })
        };
        self.http(host, &[], &paths)
            .into_iter()
            .map(copies)
            .collect()
    }

    /// Copies host `host` holds for other owners, per its last repair pass.
    pub fn held_for_others(&self, host: usize) -> Option<u64> {
        let (_, _, body) = self.http_one(host, &[], "v1/status".into());
        let status: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let repair = &status["repair"];
        Some(repair["held_chunks"].as_u64()? + repair["held_records"].as_u64()?)
    }

    /// Whether every peer of `watchers` holds every peer of `watched` as
    /// anything but alive.
    pub fn sees_gone(&self, watchers: &[usize], watched: &[usize]) -> bool {
        watchers.iter().all(|&w| {
            self.peers[w].members().is_some_and(|members| {
                watched.iter().all(|&x| {
                    members
                        .iter()
                        .any(|(id, state)| *id == self.ids[x] && state != "alive")
                })
            })
        })
    }

    /// Whether every peer lists every peer alive, and no one else.
    pub fn all_alive(&self) -> bool {
        let peers: Vec<&Peer> = self.peers.iter().collect();
        all_alive(&peers, &self.ids)
    }

    /// HTTP requests to host `host`'s API, one per path (after `/`), all
    /// with curl arguments `args`, in one curl run inside its namespace.
    pub fn http(&self, host: usize, args: &[&str], paths: &[String]) -> Vec<Answer> {
        let files: Vec<String> = (0..paths.len())
            .map(|i| {
                let file = self.dir().join(format!("answer-{host}-{i}"));
                let _ = std::fs::remove_file(&file);
                file.display().to_string()
            })
            .collect();
        let urls: Vec<String> = paths
            .iter()
            .map(|p| format!("{}/{p}", self.peers[host].api))
            .collect();
        let mut full = vec!["-s", "-m", "60"];
        full.extend(["-w", "%{http_code} %header{x-shoal-version}\\n"]);
        full.extend_from_slice(args);
        for (url, file) in urls.iter().zip(&files) {
            full.extend(["-o", file, url]);
        }
        let out = curl_in(self.lan.ns(host), &full);
        let written = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = written.lines();
        files
            .iter()
            .map(|file| {
                let mut fields = lines.next().unwrap_or_default().split_whitespace();
                let status = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let version = fields.next().map(str::to_owned);
                (status, version, std::fs::read(file).unwrap_or_default())
            })
            .collect()
    }

    /// One HTTP request to host `host`'s API (see `http`).
    pub fn http_one(&self, host: usize, args: &[&str], path: String) -> Answer {
        let answers = self.http(host, args, &[path]);
        answers.into_iter().next().expect("one answer per path")
    }

    /// Polls `check` until it holds, failing the test with the tail of
    /// every peer's log after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, check: impl FnMut() -> bool) {
        assert!(
            poll_until(timeout, check),
            "{}: timed out after {timeout:?} waiting for {what}\n{}",
            self.label,
            self.logs()
        );
    }

    /// The tail of every peer's log.
    pub fn logs(&self) -> String {
        let tails = self.peers.iter().enumerate().map(|(host, peer)| {
            let log = peer.log_text();
            let mut tail: Vec<&str> = log.lines().rev().take(20).collect();
            tail.reverse();
            format!("--- host {host} ---\n{}", tail.join("\n"))
        });
        tails.collect::<Vec<_>>().join("\n")
    }
}

/// Who holds a file's manifest and each of its chunks (peer ids).
#[derive(Debug)]
pub struct Copies {
    /// The peers holding the manifest.
    pub manifest: Vec<String>,
    /// For each chunk in file order, the peers holding it.
    pub chunks: Vec<Vec<String>>,
}

impl Copies {
    /// Whether the manifest and each chunk have exactly `n` copies.
    pub fn exactly(&self, n: usize) -> bool {
        self.manifest.len() == n && self.chunks.iter().all(|c| c.len() == n)
    }

    /// How many copies the manifest has, and each chunk.
    pub fn counts(&self) -> (usize, Vec<usize>) {
        let chunks = self.chunks.iter().map(Vec::len).collect();
        (self.manifest.len(), chunks)
    }
}
