//! The peer book: the members this peer knew and its own incarnation, kept
//! so that a restarted peer rejoins its swarm by itself and comes back with
//! an incarnation higher than any it announced before.
//!
//! The store does not interpret peer ids or addresses; it keeps their
//! binary forms as the swarm hands them over.

use redb::{ReadTransaction, ReadableTable};
use serde::{Deserialize, Serialize};

use super::error::Result;
use super::tables::{INCARNATION, PEERS};
use super::writer::Tables;
use crate::codec;

/// The most peers the book keeps.
pub const MAX_KNOWN_PEERS: usize = 4096;

/// A member remembered across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Its peer id, in binary form.
    pub peer_id: Vec<u8>,
    /// Its last known listen addresses, in binary form.
    pub addrs: Vec<Vec<u8>>,
}

/// A change to the peer book.
#[derive(Debug, Clone)]
pub enum PeerBookChange {
    /// Raise the incarnation by one and return it: done once per start.
    NextIncarnation,
    /// Replace the remembered members, and raise the incarnation to at
    /// least `incarnation` (it rises when the peer refutes a suspicion).
    Save {
        /// The incarnation the peer now announces.
        incarnation: u64,
        /// Every member it knows.
        peers: Vec<KnownPeer>,
    },
}

/// Applies `change` in the writer's transaction; returns the incarnation.
pub(super) fn apply(t: &mut Tables<'_>, change: &PeerBookChange) -> Result<u64> {
    let current = t.counters.get(INCARNATION)?.map_or(0, |v| v.value());
    let incarnation = match change {
        PeerBookChange::NextIncarnation => current.saturating_add(1),
        PeerBookChange::Save { incarnation, peers } => {
            let stale: Vec<Vec<u8>> = t
                .peers
                .iter()?
                .map(|row| row.map(|(k, _)| k.value().to_vec()))
                .collect::<std::result::Result<_, _>>()?;
            for key in stale {
                t.peers.remove(key.as_slice())?;
            }
            for peer in peers.iter().take(MAX_KNOWN_PEERS) {
                t.peers.insert(
                    peer.peer_id.as_slice(),
                    codec::encode(&peer.addrs)?.as_slice(),
                )?;
            }
            current.max(*incarnation)
        }
    };
    t.counters.insert(INCARNATION, incarnation)?;
    Ok(incarnation)
}

/// The remembered members. A row that does not decode is skipped, since
/// losing one address book entry must not keep the peer from starting.
pub(super) fn read_known(txn: &ReadTransaction) -> Result<Vec<KnownPeer>> {
    let table = txn.open_table(PEERS)?;
    let mut peers = Vec::new();
    for row in table.iter()? {
        let (key, value) = row?;
        match codec::decode::<Vec<Vec<u8>>>(value.value()) {
            Ok(addrs) => peers.push(KnownPeer {
                peer_id: key.value().to_vec(),
                addrs,
            }),
            Err(error) => tracing::warn!(%error, "skipping an unreadable peer book entry"),
        }
    }
    Ok(peers)
}
