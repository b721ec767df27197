//! The data path: put, get, delete, list and stat of whole files across the
//! swarm.
//!
//! Any peer coordinates any request. The ring (`crate::dht`) over the
//! current members names each chunk's and each manifest's owners; this
//! module sends chunks to their owners, keeps manifests on theirs with
//! quorum writes and reads, and streams files back from whichever replica
//! answers. The local peer is reached through the same request types as
//! remote ones (`crate::replica::serve`), so one code path covers both.
//!
//! - `put`: streams a body into chunks, places each on its owners with a
//!   bounded window in flight, then writes the manifest.
//! - `read`: reads manifests by quorum with read repair, finds who holds
//!   each chunk, and streams verified chunks in order.
//! - `records`: record writes, deletes, swarm-wide listings, and releasing
//!   the chunks of versions that are gone.
//! - `audit`: finds references this peer still holds for versions that are
//!   gone (a release it missed while down) and drops them.
//! - `repair`: makes sure the owners of everything held here have it
//!   (re-replication, hinted handoff, rebalancing, catching up).
//! - `scrub`: re-hashes everything held here and replaces damaged copies.
//!
//! File data never accumulates in memory: an upload holds at most its window
//! of chunks, all uploads together at most `max_chunks_in_flight`, and a
//! download reads ahead a fixed number of chunks. What grows with a file is
//! its metadata: the manifest and the chunk map of a download take about
//! 100 bytes per chunk, 0.01 % of the file at the default chunk size.

mod audit;
mod error;
mod put;
mod read;
mod records;
mod repair;
mod scrub;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use self::audit::AuditReport;
pub use self::read::ChunkSources;
pub use self::records::Listing;
pub use self::repair::{HandOver, RepairFigures};
pub use self::scrub::ScrubReport;
/// What the data path reports from the store: its figures, and files as a
/// listing shows them.
pub use crate::store::{FileSummary, StoreStats};
pub use error::{FailureKind, FilesError};

use crate::chunk::{ChunkRef, HlcClock, Version};
use crate::config::{HealingConfig, ReplicationConfig, TransferConfig};
use crate::dht::{Candidate, Placement};
use crate::gossip::MemberState;
use crate::identity::PeerId;
use crate::net::{MemberList, Network};
use crate::protocol::{DataRequest, DataResponse, Refusal};
use crate::replica;
use crate::store::Store;

/// How long a chunk exchange with one peer may take before another replica
/// is tried.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a record or listing exchange with one peer may take.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// One chunk of a file with the peers that hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkPlacement {
    /// The chunk as the manifest records it.
    pub chunk: ChunkRef,
    /// Peers that confirm holding the chunk right now.
    pub replicas: Vec<PeerId>,
}

/// What `stat` reports about a file's copies.
#[derive(Debug, Clone)]
pub struct FileReplicas {
    /// Peers that confirm holding the current manifest.
    pub manifest: Vec<PeerId>,
    /// Every chunk with the peers that confirm holding it.
    pub chunks: Vec<ChunkPlacement>,
}

/// Counts of what this peer sent and skipped as a coordinator, so the cost
/// of a transfer (and the saving of deduplication) can be observed.
#[derive(Debug, Default)]
pub struct TransferCounters {
    chunks_sent: AtomicU64,
    chunk_bytes_sent: AtomicU64,
    chunks_already_held: AtomicU64,
    chunk_bytes_received: AtomicU64,
}

/// A snapshot of [`TransferCounters`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TransferFigures {
    /// Chunks sent to other peers by puts coordinated here.
    pub chunks_sent: u64,
    /// Bytes of chunk data sent to other peers by puts coordinated here.
    pub chunk_bytes_sent: u64,
    /// Chunk copies not sent because their owner already held them.
    pub chunks_already_held: u64,
    /// Bytes of chunk data fetched from other peers by gets coordinated here.
    pub chunk_bytes_received: u64,
}

/// The data path of one peer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Files {
    store: Store,
    network: Network,
    clock: Arc<HlcClock>,
    local_peer: PeerId,
    chunk_size: u32,
    transfer: TransferConfig,
    replication: ReplicationConfig,
    healing: HealingConfig,
    chunks_in_flight: Arc<Semaphore>,
    counters: Arc<TransferCounters>,
    repair: Arc<repair::RepairCounters>,
    scrubbing: Arc<tokio::sync::Mutex<()>>,
    last_scrub: Arc<Mutex<Option<ScrubReport>>>,
    placement: Arc<Mutex<Option<CachedPlacement>>>,
}

/// Placement, the member list it was computed from, and when.
type CachedPlacement = (Arc<MemberList>, Instant, Arc<Placement>);

/// How long a computed placement is reused for an unchanged member list.
const PLACEMENT_FRESHNESS: Duration = Duration::from_secs(1);

impl Files {
    /// The data path over the local `store` and the swarm `network`,
    /// writing new files in chunks of `chunk_size` bytes.
    pub fn new(
        store: Store,
        network: Network,
        chunk_size: u32,
        transfer: TransferConfig,
        replication: ReplicationConfig,
        healing: HealingConfig,
    ) -> Self {
        Files {
            store,
            clock: Arc::new(HlcClock::new()),
            local_peer: network.local_peer(),
            network,
            chunk_size,
            chunks_in_flight: Arc::new(Semaphore::new(transfer.max_chunks_in_flight)),
            transfer,
            replication,
            healing,
            counters: Arc::default(),
            repair: Arc::default(),
            scrubbing: Arc::default(),
            last_scrub: Arc::default(),
            placement: Arc::default(),
        }
    }

    /// The local peer's id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// The replication settings in force.
    pub fn replication(&self) -> ReplicationConfig {
        self.replication
    }

    /// What this peer has sent and received as a coordinator so far.
    pub fn transfer_figures(&self) -> TransferFigures {
        let c = &self.counters;
        TransferFigures {
            chunks_sent: c.chunks_sent.load(Ordering::Relaxed),
            chunk_bytes_sent: c.chunk_bytes_sent.load(Ordering::Relaxed),
            chunks_already_held: c.chunks_already_held.load(Ordering::Relaxed),
            chunk_bytes_received: c.chunk_bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Figures about the local store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn store_stats(&self) -> Result<StoreStats, FilesError> {
        Ok(self.store.stats().await?)
    }

    /// Placement over the current member list, rebuilt when the list
    /// changes and at least every [`PLACEMENT_FRESHNESS`] (a down member
    /// leaves the ring by the passing of time alone).
    fn placement(&self) -> Arc<Placement> {
        let members = Arc::clone(&self.network.members().borrow());
        let mut cached = self.placement.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, built, placement)) = cached.as_ref()
            && Arc::ptr_eq(seen, &members)
            && built.elapsed() < PLACEMENT_FRESHNESS
        {
            return Arc::clone(placement);
        }
        let placement = Arc::new(placement_of(
            &members,
            self.replication.replicas,
            self.healing.rereplicate_after,
        ));
        *cached = Some((members, Instant::now(), Arc::clone(&placement)));
        placement
    }

    /// The write quorum for a key kept on `copies` peers.
    fn write_quorum(&self, copies: usize) -> usize {
        self.replication.write_quorum.min(copies).max(1)
    }

    /// The read quorum for a key kept on `copies` peers.
    fn read_quorum(&self, copies: usize) -> usize {
        self.replication.read_quorum.min(copies).max(1)
    }

    /// A version newer than every version this peer has given or seen.
    fn next_version(&self) -> Version {
        Version {
            hlc: self.clock.now(),
            writer: self.local_peer.to_base58(),
        }
    }

    /// Sends `request` to `peer` (the local replica directly) and returns
    /// its answer, turning a refusal into an error.
    async fn call(
        &self,
        peer: PeerId,
        request: DataRequest,
        timeout: Duration,
    ) -> Result<DataResponse, PeerFailure> {
        let response = if peer == self.local_peer {
            tokio::time::timeout(timeout, replica::serve_local(&self.store, request))
                .await
                .map_err(|_| PeerFailure {
                    peer,
                    refusal: None,
                    message: format!("this peer's store gave no answer within {timeout:?}"),
                })?
        } else {
            self.network
                .request(peer, request, timeout)
                .await
                .map_err(|e| PeerFailure {
                    peer,
                    refusal: None,
                    message: e.to_string(),
                })?
        };
        match response {
            DataResponse::Refused { reason, message } => Err(PeerFailure {
                peer,
                refusal: Some(reason),
                message,
            }),
            other => Ok(other),
        }
    }
}

/// Why one peer did not do what it was asked.
#[derive(Debug, Clone)]
struct PeerFailure {
    peer: PeerId,
    refusal: Option<Refusal>,
    message: String,
}

impl PeerFailure {
    fn unexpected(peer: PeerId, response: &DataResponse) -> Self {
        PeerFailure {
            peer,
            refusal: None,
            message: format!("unexpected answer {}", response_kind(response)),
        }
    }
}

impl std::fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peer = self.peer.to_base58();
        let short = &peer[peer.len().saturating_sub(8)..];
        write!(f, "peer …{short}: {}", self.message)
    }
}

fn response_kind(response: &DataResponse) -> &'static str {
    match response {
        DataResponse::Held(_) => "held",
        DataResponse::Stored => "stored",
        DataResponse::Chunk(_) => "chunk",
        DataResponse::Digests(_) => "digests",
        DataResponse::Hashes { .. } => "hashes",
        DataResponse::Released => "released",
        DataResponse::Uploading(_) => "uploading",
        DataResponse::RecordWritten(_) => "record written",
        DataResponse::Record(_) => "record",
        DataResponse::Head(_) => "head",
        DataResponse::Records { .. } => "records",
        DataResponse::Refused { .. } => "refused",
    }
}

/// Placement over a member list: members alive or suspect are up; members
/// dead for less than `rereplicate_after` keep their place on the ring but
/// are down; members dead for longer, and members leaving for good (this
/// one included), are off the ring.
fn placement_of(members: &MemberList, replicas: usize, rereplicate_after: Duration) -> Placement {
    let local = (!members.local.leaving).then_some(Candidate {
        peer: members.local.peer_id,
        capacity_bytes: members.local.capacity_bytes,
        up: true,
    });
    let others = members.members.iter().filter_map(|m| {
        if m.record.leaving {
            return None;
        }
        let up = matches!(m.state, MemberState::Alive | MemberState::Suspect);
        (up || m.since.elapsed() < rereplicate_after).then_some(Candidate {
            peer: m.record.peer_id,
            capacity_bytes: m.record.capacity_bytes,
            up,
        })
    });
    Placement::new(local.into_iter().chain(others), replicas)
}

#[cfg(test)]
mod tests;
