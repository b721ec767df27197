//! How a data request reaches a replica, and how long it may take.
//!
//! [`Transport`] is the one seam between the data path and the network: the
//! running peer uses [`SwarmTransport`] (the local store directly, every
//! other peer over libp2p), and tests put an in-memory swarm behind the
//! same trait, with peers that are down, hang, answer late or serve
//! damaged copies, so the quorum and healing rules run against faults
//! without sockets.
//!
//! Deadlines are not one fixed number. A request may take the time to a
//! first answer plus its size at a minimum transfer rate ([`Deadlines`]): a
//! hung peer is given up on after about `--peer-timeout` for a small
//! question, while a 16 MiB chunk to a busy peer is not mistaken for a hung
//! one. A peer that lets a request time out is then passed over for a
//! moment ([`Responsiveness`]), so a put does not wait on it once per chunk
//! before membership has declared it dead.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use libp2p::PeerId;

use super::failure::PeerError;
use crate::config::TransferConfig;
use crate::net::{Network, RequestError};
use crate::protocol::{DataRequest, DataResponse};
use crate::store::Store;

/// Carries data requests to replicas: the local one and every other.
pub trait Transport: Send + Sync + fmt::Debug {
    /// The peer this transport sends from.
    fn local_peer(&self) -> PeerId;

    /// Sends `request` to `peer` and waits at most `deadline` for the
    /// answer. A refusal is an answer here; the typed client turns it into
    /// a failure.
    fn send(
        &self,
        peer: PeerId,
        request: DataRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<DataResponse, PeerError>>;
}

/// How long a request may take: `first_byte` for any answer at all, plus
/// the bytes it carries (either way) at `min_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The time a peer may take to start answering (`--peer-timeout`).
    pub first_byte: Duration,
    /// The slowest transfer still taken for a working peer, in bytes per
    /// second (`--min-transfer-rate`).
    pub min_rate: u64,
}

impl Deadlines {
    /// The deadlines the transfer settings ask for.
    pub fn from_config(config: &TransferConfig) -> Self {
        Deadlines {
            first_byte: config.peer_timeout,
            min_rate: config.min_transfer_rate.max(1),
        }
    }

    /// The deadline for a request that moves `bytes` of data.
    pub fn for_bytes(&self, bytes: usize) -> Duration {
        let transfer = Duration::from_secs_f64(bytes as f64 / self.min_rate as f64);
        self.first_byte.saturating_add(transfer)
    }

    /// The deadline for a small question and answer.
    pub fn small(&self) -> Duration {
        self.for_bytes(0)
    }
}

/// How long a peer that let a request time out is passed over. Long
/// enough that a put does not wait on a hung peer chunk after chunk, short
/// enough that a peer that was only slow is asked again soon.
const UNRESPONSIVE_HOLD: Duration = Duration::from_secs(5);

/// Peers that recently let a request time out.
///
/// A peer is passed over from its timeout until [`UNRESPONSIVE_HOLD`] has
/// passed; then one request is let through to find out whether it is back
/// (and the hold starts again if it is not). Any answer, a refusal
/// included, clears the mark. Only timeouts count: a peer that refuses or
/// whose connection is gone fails fast anyway.
#[derive(Debug, Default)]
pub struct Responsiveness {
    silent: Mutex<HashMap<PeerId, Instant>>,
}

impl Responsiveness {
    /// Whether a request may be sent to `peer` now.
    pub fn may_ask(&self, peer: &PeerId) -> bool {
        let mut silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        match silent.get_mut(peer) {
            None => true,
            Some(since) if since.elapsed() >= UNRESPONSIVE_HOLD => {
                // Let this one request through; others wait another hold.
                *since = Instant::now();
                true
            }
            Some(_) => false,
        }
    }

    /// Whether `peer` is currently passed over (without letting a
    /// request through).
    pub fn is_unresponsive(&self, peer: &PeerId) -> bool {
        let silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        silent
            .get(peer)
            .is_some_and(|since| since.elapsed() < UNRESPONSIVE_HOLD)
    }

    /// Records that `peer` let a request time out.
    pub fn timed_out(&self, peer: PeerId) {
        let mut silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        silent.insert(peer, Instant::now());
    }

    /// Records that `peer` answered.
    pub fn answered(&self, peer: &PeerId) {
        let mut silent = self.silent.lock().unwrap_or_else(|e| e.into_inner());
        if silent.remove(peer).is_some() {
            tracing::info!(%peer, "peer answers again");
        }
    }
}

/// The running peer's transport: this peer's own store directly, every
/// other peer through the swarm.
#[derive(Debug, Clone)]
pub struct SwarmTransport {
    network: Network,
    store: Store,
}

impl SwarmTransport {
    /// Sends through `network`, serving this peer's own requests from
    /// `store`.
    pub fn new(network: Network, store: Store) -> Self {
        SwarmTransport { network, store }
    }
}

impl Transport for SwarmTransport {
    fn local_peer(&self) -> PeerId {
        self.network.local_peer()
    }

    fn send(
        &self,
        peer: PeerId,
        request: DataRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<DataResponse, PeerError>> {
        async move {
            if peer == self.network.local_peer() {
                return tokio::time::timeout(deadline, super::serve_local(&self.store, request))
                    .await
                    .map_err(|_| PeerError::Timeout(deadline));
            }
            self.network
                .request(peer, request, deadline)
                .await
                .map_err(|error| match error {
                    RequestError::Timeout(after) => PeerError::Timeout(after),
                    RequestError::Failed(why) => PeerError::Unreachable(why),
                    RequestError::Closed => PeerError::Closed,
                })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_grows_with_the_bytes_moved() {
        let deadlines = Deadlines {
            first_byte: Duration::from_secs(2),
            min_rate: 1 << 20,
        };
        assert_eq!(deadlines.small(), Duration::from_secs(2));
        assert_eq!(deadlines.for_bytes(16 << 20), Duration::from_secs(18));
    }

    #[test]
    fn a_silent_peer_is_passed_over_until_it_answers() {
        let health = Responsiveness::default();
        let peer = PeerId::random();
        assert!(health.may_ask(&peer));
        health.timed_out(peer);
        assert!(!health.may_ask(&peer));
        assert!(health.is_unresponsive(&peer));
        health.answered(&peer);
        assert!(health.may_ask(&peer));
        assert!(!health.is_unresponsive(&peer));
    }
}
