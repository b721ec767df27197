//! Finding and dialling peers: those mDNS reports on the LAN, those the
//! membership asks to connect to, and the addresses members announce.
//!
//! A peer found by mDNS is dialled until it connects, with a growing pause
//! between attempts, and given up after [`DISCOVERY_ATTEMPTS`] until it is
//! found again. A peer whose handshake refused this one (another cluster
//! secret) is left alone for [`REFUSED_BACKOFF`]: redialling it cannot
//! succeed until someone fixes the configuration.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, mdns};

use super::behaviour::Behaviour;
use super::transport::describe_dial_error;
use crate::gossip::Membership;

/// How long a peer whose handshake failed is left alone by discovery.
const REFUSED_BACKOFF: Duration = Duration::from_secs(300);

/// How many handshake refusals are remembered before the expired ones are
/// pruned, so a flood of strangers cannot grow the map without bound.
const REFUSED_PRUNE_AT: usize = 1024;

/// How long the peer with the larger id waits before dialling a peer found
/// by mDNS: both find each other at once, and two simultaneous dials can
/// meet and fail.
const DISCOVERY_DEFERRAL: Duration = Duration::from_secs(1);

/// How many times a peer found by mDNS is dialled before discovery gives up
/// on it (until it is discovered again).
const DISCOVERY_ATTEMPTS: u32 = 8;

/// A peer found by mDNS, not yet connected.
struct Found {
    addrs: Vec<Multiaddr>,
    next_attempt: Instant,
    attempts: u32,
}

/// Peers found on the LAN and peers that refused this one's handshake.
#[derive(Default)]
pub(super) struct Discovery {
    /// Peers that failed the handshake, and when.
    refused: HashMap<PeerId, Instant>,
    found: HashMap<PeerId, Found>,
}

impl Discovery {
    /// Takes note of the peers an mDNS event reports and dials those due.
    pub(super) fn on_mdns(&mut self, swarm: &mut Swarm<Behaviour>, event: mdns::Event) {
        let mdns::Event::Discovered(found) = event else {
            return;
        };
        let me = *swarm.local_peer_id();
        let now = Instant::now();
        let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for (peer, addr) in found {
            if peer != me {
                by_peer.entry(peer).or_default().push(addr);
            }
        }
        for (peer, addrs) in by_peer {
            let refused = self
                .refused
                .get(&peer)
                .is_some_and(|at| now.duration_since(*at) < REFUSED_BACKOFF);
            if refused || swarm.is_connected(&peer) {
                continue;
            }
            tracing::debug!(%peer, ?addrs, "discovered on the LAN");
            let next_attempt = if me < peer {
                now
            } else {
                now + DISCOVERY_DEFERRAL
            };
            self.found.insert(
                peer,
                Found {
                    addrs,
                    next_attempt,
                    attempts: 0,
                },
            );
        }
        self.dial_due(swarm, now);
    }

    /// Dials peers found by mDNS that are due, backing off after failures.
    pub(super) fn dial_due(&mut self, swarm: &mut Swarm<Behaviour>, now: Instant) {
        let connected: Vec<PeerId> = self
            .found
            .keys()
            .filter(|p| swarm.is_connected(p) || self.refused.contains_key(p))
            .copied()
            .collect();
        for peer in connected {
            self.found.remove(&peer);
        }
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .found
            .iter_mut()
            .filter(|(_, f)| now >= f.next_attempt)
            .map(|(peer, f)| {
                f.attempts += 1;
                f.next_attempt = now + Duration::from_secs(1 << f.attempts.min(6));
                (*peer, f.addrs.clone())
            })
            .collect();
        self.found.retain(|_, f| f.attempts < DISCOVERY_ATTEMPTS);
        for (peer, addrs) in due {
            dial(swarm, peer, addrs);
        }
    }

    /// `peer` connected: whatever refused before has been fixed.
    pub(super) fn connected(&mut self, peer: &PeerId) {
        self.refused.remove(peer);
    }

    /// `peer` refused this peer's handshake at `now`.
    pub(super) fn refused(&mut self, peer: PeerId, now: Instant) {
        if self.refused.len() >= REFUSED_PRUNE_AT {
            self.refused
                .retain(|_, at| now.duration_since(*at) < REFUSED_BACKOFF);
        }
        self.refused.insert(peer, now);
    }
}

/// Dials `peer` at `addrs` unless it is connected or being dialled already.
pub(super) fn dial(swarm: &mut Swarm<Behaviour>, peer: PeerId, addrs: Vec<Multiaddr>) {
    for addr in &addrs {
        swarm.add_peer_address(peer, addr.clone());
    }
    // A fresh source port: dialling from the listen port lets two peers
    // dialling each other at once meet in one TCP connection where both
    // think they are the dialler, and the handshake fails.
    let opts = DialOpts::peer_id(peer)
        .addresses(addrs)
        .condition(PeerCondition::DisconnectedAndNotDialing)
        .allocate_new_port()
        .build();
    if let Err(error) = swarm.dial(opts) {
        tracing::debug!(%peer, "not dialling: {}", describe_dial_error(&error));
    }
}

/// Tells the swarm the addresses `peer` announced as a member, so a request
/// to it can open a connection if none is open.
pub(super) fn add_member_addresses(
    swarm: &mut Swarm<Behaviour>,
    membership: &Membership,
    peer: &PeerId,
) {
    if let Some(member) = membership.member(peer) {
        for addr in &member.record.listen {
            swarm.add_peer_address(*peer, addr.clone());
        }
    }
}
