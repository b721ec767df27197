//! What a peer says about itself, and the states others hold it in.

use std::fmt;
use std::net::SocketAddr;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::chunk::{Extensions, InvalidExtensions, tags};
use crate::codec;

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

/// What a peer reports about itself beside its record, so that any member
/// can show the whole swarm: kept in the record's optional fields (tag
/// `PEER_FIGURES`), refreshed every few seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFigures {
    /// The shoal release it runs.
    pub version: String,
    /// Live files whose manifests it stores.
    pub files: u64,
    /// Chunks it stores.
    pub chunks: u64,
    /// Bytes of chunk data it stores.
    pub stored_bytes: u64,
    /// Items it holds that an up owner lacked in its last repair pass.
    pub under_replicated: u64,
    /// Bytes its repair has decided to send and not sent yet.
    pub repair_queued_bytes: u64,
    /// Bytes its repair has sent since it started.
    pub repair_bytes_sent: u64,
    /// Bytes of chunks it sent to other peers for puts it coordinated.
    pub bytes_sent: u64,
    /// Bytes of chunks it fetched from other peers for gets it coordinated.
    pub bytes_received: u64,
}

/// The most bytes a version string may take in [`PeerFigures`].
const MAX_VERSION_LEN: usize = 64;

impl PeerRecord {
    /// The figures the peer reported, if it reported any that decode.
    pub fn figures(&self) -> Option<PeerFigures> {
        let bytes = self.extensions.get(tags::PEER_FIGURES)?;
        let figures: PeerFigures = codec::decode(bytes).ok()?;
        (figures.version.len() <= MAX_VERSION_LEN).then_some(figures)
    }

    /// Sets the figures the record reports.
    pub fn set_figures(&mut self, figures: &PeerFigures) {
        if let Ok(bytes) = codec::encode(figures) {
            self.extensions.set(tags::PEER_FIGURES, bytes);
        }
    }
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
