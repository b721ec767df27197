//! What a peer says about itself, and the states others hold it in.

use std::fmt;
use std::net::SocketAddr;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::chunk::{Extensions, InvalidExtensions};

/// The most listen addresses one record may carry.
pub const MAX_LISTEN_ADDRS: usize = 16;

/// The longest listen address, in bytes of its binary form.
pub const MAX_ADDR_BYTES: usize = 256;

/// A peer's description of itself, announced over gossip and handed to
/// joiners. Newer incarnations replace older ones; a record is only ever
/// raised in incarnation by the peer it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Who.
    pub peer_id: PeerId,
    /// Raised each time the peer starts and each time it refutes a
    /// suspicion, so its own word always beats older rumours about it.
    pub incarnation: u64,
    /// Where other peers can dial it.
    pub listen: Vec<Multiaddr>,
    /// Its HTTP API address, as it was configured.
    pub api: Option<SocketAddr>,
    /// Bytes it can hold: what it stores plus the free space of its disk.
    pub capacity_bytes: u64,
    /// Bytes its store uses on disk.
    pub used_bytes: u64,
    /// Whether it is leaving the swarm for good (`shoal leave`): the others
    /// take it off the ring at once and it hands its data over before it
    /// goes. A peer that merely stops (and may come back) never sets this.
    pub leaving: bool,
    /// Optional fields added by later releases, relayed as they came.
    pub extensions: Extensions,
}

/// A peer record that breaks the limits a record from another peer must
/// respect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    /// More than [`MAX_LISTEN_ADDRS`] listen addresses.
    #[error("{0} listen addresses")]
    TooManyAddrs(usize),
    /// A listen address longer than [`MAX_ADDR_BYTES`].
    #[error("listen address of {0} bytes")]
    AddrTooLong(usize),
    /// More bytes used than the capacity announced.
    #[error("more bytes used than capacity")]
    OverCapacity,
    /// Optional fields over their limits.
    #[error(transparent)]
    Extensions(#[from] InvalidExtensions),
}

impl PeerRecord {
    /// Checks the limits a record from another peer must respect.
    ///
    /// # Errors
    /// [`InvalidRecord`] naming the first violation.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if self.listen.len() > MAX_LISTEN_ADDRS {
            return Err(InvalidRecord::TooManyAddrs(self.listen.len()));
        }
        if let Some(addr) = self.listen.iter().find(|a| a.len() > MAX_ADDR_BYTES) {
            return Err(InvalidRecord::AddrTooLong(addr.len()));
        }
        if self.used_bytes > self.capacity_bytes {
            return Err(InvalidRecord::OverCapacity);
        }
        Ok(self.extensions.validate()?)
    }
}

/// How a member is seen: the three states of SWIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering, or heard from recently.
    Alive,
    /// A probe failed; it is being given time to refute.
    Suspect,
    /// Declared failed; it stays so until it announces a newer incarnation.
    Dead,
}

impl MemberState {
    /// The lowercase name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
