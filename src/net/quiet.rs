//! Keeping connection problems from flooding the log.
//!
//! A misconfigured neighbour (another cluster secret, not a shoal peer)
//! retries forever; each of its failures is worth one warning, not one a
//! second. The first report of a problem is loud, repeats within
//! [`LOG_QUIET`] are logged at debug level.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// How long the same connection problem with the same address stays quiet
/// in the log after it was reported.
const LOG_QUIET: Duration = Duration::from_secs(60);

/// How many problems are remembered before the expired ones are pruned.
const PRUNE_AT: usize = 1024;

/// Recently logged connection problems, by key.
#[derive(Default)]
pub(super) struct QuietLog {
    logged: HashMap<String, Instant>,
}

impl QuietLog {
    /// Logs through `log` with `quiet` set when the same `key` was logged
    /// within [`LOG_QUIET`].
    pub(super) fn log(&mut self, key: &str, log: impl FnOnce(bool)) {
        let now = Instant::now();
        let quiet = self
            .logged
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < LOG_QUIET);
        if !quiet {
            if self.logged.len() > PRUNE_AT {
                self.logged
                    .retain(|_, at| now.duration_since(*at) < LOG_QUIET);
            }
            self.logged.insert(key.to_owned(), now);
        }
        log(quiet);
    }
}

/// The host part of a remote address, for grouping log lines: a peer
/// connects from a new port each time.
pub(super) fn remote_host(addr: &Multiaddr) -> String {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Ip4(ip) => Some(ip.to_string()),
            Protocol::Ip6(ip) => Some(ip.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| addr.to_string())
}
